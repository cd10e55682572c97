"""Train FAD-FCOS R-50 FPN, 1x (90k iterations, batch 16, lr 0.01), short side 800, COCO 2017.

Op width C = 96; the towers default to the paper's genotypes (40.3 AP minival in the paper).
Use searched ones with train_net.py --genotype-file OUTPUT/genotype.log.
"""

from ...common.canvas import fixed_canvas
from ...common.data.coco import dataloader
from ...common.models.fad_fcos import model
from ...common.optim import SGD as optimizer
from ...common.schedule import lr_multiplier_1x as lr_multiplier
from ...common.train import train

# On GPUs, every batch padded to 800x1344 (1344x800 portrait), in training and evaluation:
# fixed shapes for CUDA graphs, for about 16% more pixels (docs/BENCHMARKS.md).
model.fixed_canvas = fixed_canvas()
optimizer.lr = 0.01
train.max_iter = 90000
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/augment/fad_fcos_R_50_FPN_1x"
dataloader.train.total_batch_size = 16
