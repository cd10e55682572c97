"""The detectron2 models: FCOS and RetinaNet with FAD heads, Mask R-CNN with a FAD mask head."""

from .backbone import make_resnext_stages
from .fad_head import ConvTower, FADHead, FADMaskHead, FADRetinaNetHead
from .meta_arch import FADFCOS, FADMaskRCNN, FADRetinaNet

__all__ = [
    "ConvTower",
    "FADFCOS",
    "FADHead",
    "FADMaskHead",
    "FADMaskRCNN",
    "FADRetinaNet",
    "FADRetinaNetHead",
    "make_resnext_stages",
]
