"""A CPU-sized search of the Mask R-CNN mask tower on the synthetic dataset with masks.

ResNet-18 FPN-64, mask tower op width 64, 128-px images; the optimizers, schedule and budget of
the detector-tower synthetic search (fad_fcos_R_18_synthetic.py). For tests and the quick start.
"""

from ...common.data.synthetic_mask import dataloader
from ...common.models.fad_mask_rcnn_search import model
from ...common.models.r18_small import shrink_mask_rcnn
from .fad_fcos_R_18_synthetic import (
    arch_optimizer,
    lr_multiplier,
    optimizer,
    search,
    train,
)

shrink_mask_rcnn(model, num_classes=3)
train.output_dir = "./output/search/fad_mask_rcnn_R_18_synthetic"
