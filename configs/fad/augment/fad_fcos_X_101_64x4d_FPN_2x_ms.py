"""Train FAD-FCOS X-101-64x4d FPN, 2x multi-scale, COCO 2017 (paper: 46.0 AP minival).

Op width C = 128. detectron2's model zoo has no ImageNet X-101-64x4d, so the weights are
Detectron's (Caffe2, BGR, std 1), the ones the original maskrcnn-benchmark code used;
detectron2's checkpointer reads that format.
"""

from detectron2.config import LazyCall as L

from fad.modeling import make_resnext_stages

from ...common.canvas import fixed_canvas
from ...common.data.coco import dataloader, multi_scale
from ...common.models.fad_fcos import model
from ...common.optim import SGD as optimizer
from ...common.schedule import lr_multiplier_2x as lr_multiplier
from ...common.train import train

model.backbone.bottom_up.stages = L(make_resnext_stages)(
    depth=101, num_groups=64, width_per_group=4, norm="FrozenBN", stride_in_1x1=False
)
model.head.box_tower.op_channels = model.head.cls_tower.op_channels = 128
multi_scale(dataloader)
# Off: a canvas for short sides 640-800 costs about a third more pixels than detectron2's
# padding (docs/BENCHMARKS.md); model.fixed_canvas.enabled=cuda turns it on for CUDA graphs.
model.fixed_canvas = fixed_canvas(enabled=False)
optimizer.lr = 0.01
train.max_iter = 180000
train.init_checkpoint = (
    "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/20171220/X-101-64x4d.pkl"
)
train.output_dir = "./output/augment/fad_fcos_X_101_64x4d_FPN_2x_ms"
