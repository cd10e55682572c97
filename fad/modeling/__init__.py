"""The detectron2 models: FAD heads and the FCOS and RetinaNet meta-architectures with them."""

from .backbone import make_resnext_stages
from .fad_fcos import FADFCOS
from .fad_head import ConvTower, FADHead, FADRetinaNetHead, FADTowers
from .fad_retinanet import FADRetinaNet
from .meta_arch import FADDetectorMixin

__all__ = [
    "ConvTower",
    "FADDetectorMixin",
    "FADFCOS",
    "FADHead",
    "FADRetinaNet",
    "FADRetinaNetHead",
    "FADTowers",
    "make_resnext_stages",
]
