"""Train and evaluate a FAD-RetinaNet on the synthetic dataset, on a CPU (tests, quick start).

The budget of fad_fcos_R_18_synthetic.py; the paper's genotypes by default, or a searched pair
with train_net.py --genotype-file.
"""

from ...common.canvas import fixed_canvas
from ...common.models.fad_retinanet import model
from ...common.models.r18_small import shrink
from .fad_fcos_R_18_synthetic import dataloader, lr_multiplier, optimizer, train

shrink(model, num_classes=3)
model.fixed_canvas = fixed_canvas()  # GPUs only; the images are all 128x128 anyway
train.output_dir = "./output/augment/fad_retinanet_R_18_synthetic"
