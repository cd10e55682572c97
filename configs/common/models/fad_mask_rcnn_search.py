"""Mask R-CNN R-50 FPN whose mask head holds a search tower: one search cell (model only)."""

from .fad_mask_rcnn import model
from .towers import mask_tower

model.roi_heads.mask_head.tower = mask_tower()
