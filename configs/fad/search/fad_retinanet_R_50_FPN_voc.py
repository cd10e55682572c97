"""FAD search of RetinaNet's towers on VOC 2012, with the FCOS search's published setting.

The data, schedule and optimizers of fad_fcos_R_50_FPN_voc.py; the model is RetinaNet R-50 FPN
(9 anchors per location) with a FAD head in search mode.
"""

from ...common.canvas import fixed_canvas
from ...common.models.fad_retinanet_search import model
from .fad_fcos_R_50_FPN_voc import (
    arch_optimizer,
    dataloader,
    lr_multiplier,
    optimizer,
    search,
    train,
)

model.num_classes = 20
model.fixed_canvas = fixed_canvas()  # 416x704 on GPUs, as in the FCOS search
train.output_dir = "./output/search/fad_retinanet_R_50_FPN_voc"
