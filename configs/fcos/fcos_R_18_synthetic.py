"""Plain FCOS on the synthetic dataset, same budget as fad/augment/fad_fcos_R_18_synthetic.py."""

from ..common.data.synthetic import dataloader
from ..common.models.fcos import model
from ..common.models.r18_small import shrink
from ..common.synthetic_budget import lr_multiplier, optimizer, train

shrink(model, num_classes=3)
train.output_dir = "./output/fcos/fcos_R_18_synthetic"
