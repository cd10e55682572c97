"""Plain FCOS R-50 FPN 1x with the same settings as fad/augment/fad_fcos_R_50_FPN_1x.py.

The baseline whose towers FAD replaces, for side-by-side comparisons.
"""

from ..common.data.coco import dataloader
from ..common.models.fcos import model
from ..common.optim import SGD as optimizer
from ..common.schedule import lr_multiplier_1x as lr_multiplier
from ..common.train import train

optimizer.lr = 0.01
train.max_iter = 90000
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/fcos/fcos_R_50_FPN_1x"
dataloader.train.total_batch_size = 16
