"""FCOS R-50 FPN with the FAD head holding search towers: one search cell each (model only)."""

from .fad_fcos import model
from .towers import search_tower

model.head.box_tower = search_tower()
model.head.cls_tower = search_tower()
