"""Plain RetinaNet on the synthetic dataset, same budget as
fad/augment/fad_retinanet_R_18_synthetic.py."""

from ..common.models.r18_small import shrink
from ..common.models.retinanet import model
from ..fcos.fcos_R_18_synthetic import dataloader, lr_multiplier, optimizer, train

shrink(model, num_classes=3)
train.output_dir = "./output/retinanet/retinanet_R_18_synthetic"
