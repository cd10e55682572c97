"""Train FAD-FCOS R-101 FPN, 2x with multi-scale training, COCO 2017 (paper: 44.2 AP minival).

Op width C = 96.
"""

from ...common.canvas import fixed_canvas
from ...common.data.coco import dataloader, multi_scale
from ...common.models.fad_fcos import model
from ...common.optim import SGD as optimizer
from ...common.schedule import lr_multiplier_2x as lr_multiplier
from ...common.train import train

model.backbone.bottom_up.stages.depth = 101
multi_scale(dataloader)
# Off: a canvas for short sides 640-800 costs about a third more pixels than detectron2's
# padding (docs/BENCHMARKS.md); model.fixed_canvas.enabled=cuda turns it on for CUDA graphs.
model.fixed_canvas = fixed_canvas(enabled=False)
optimizer.lr = 0.01
train.max_iter = 180000
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
train.output_dir = "./output/augment/fad_fcos_R_101_FPN_2x_ms"
