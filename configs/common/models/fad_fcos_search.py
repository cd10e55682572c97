"""FCOS R-50 FPN with the FAD head in search mode: one search cell per tower (model only)."""

from .fad_fcos import model

model.head.search = True
model.head.num_cells = 1
del model.head.box_genotype
del model.head.cls_genotype
