"""A CPU-sized search of RetinaNet's towers on the synthetic dataset (tests, quick start).

The data, schedule and optimizers of fad_fcos_R_18_synthetic.py; the model is RetinaNet with a
FAD head in search mode, shrunk as the FCOS one.
"""

from ...common.canvas import fixed_canvas
from ...common.models.fad_retinanet_search import model
from ...common.models.r18_small import shrink
from .fad_fcos_R_18_synthetic import (
    arch_optimizer,
    dataloader,
    lr_multiplier,
    optimizer,
    search,
    train,
)

shrink(model, num_classes=3)
model.fixed_canvas = fixed_canvas()  # GPUs only; the images are all 128x128 anyway
train.output_dir = "./output/search/fad_retinanet_R_18_synthetic"
