"""Plain RetinaNet R-50 FPN 1x with the settings of fad/augment/fad_retinanet_R_50_FPN_1x.py.

The baseline whose towers FAD replaces, for side-by-side comparisons.
"""

from ..common.models.retinanet import model
from ..fcos.fcos_R_50_FPN_1x import dataloader, lr_multiplier, optimizer, train

train.output_dir = "./output/retinanet/retinanet_R_50_FPN_1x"
