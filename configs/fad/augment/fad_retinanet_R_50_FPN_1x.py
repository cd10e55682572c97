"""Train FAD-RetinaNet R-50 FPN, 1x, COCO 2017: the settings of fad_fcos_R_50_FPN_1x.py.

Op width C = 96; the towers default to the paper's genotypes. Use searched ones with
train_net.py --genotype-file OUTPUT/genotype.log.
"""

from ...common.canvas import fixed_canvas
from ...common.models.fad_retinanet import model
from .fad_fcos_R_50_FPN_1x import dataloader, lr_multiplier, optimizer, train

model.fixed_canvas = fixed_canvas()  # 800x1344 on GPUs, as in the FCOS config
train.output_dir = "./output/augment/fad_retinanet_R_50_FPN_1x"
