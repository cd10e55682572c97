"""The detectron2 models: FAD heads and the FCOS and RetinaNet meta-architectures with them, and
Mask R-CNN with a FAD mask head."""

from .backbone import make_resnext_stages
from .fad_fcos import FADFCOS
from .fad_head import ConvTower, FADHead, FADRetinaNetHead, FADTowers
from .fad_mask_rcnn import FADMaskRCNN
from .fad_retinanet import FADRetinaNet
from .mask_head import FADMaskHead
from .meta_arch import FADDetectorMixin, FADSearchMixin

__all__ = [
    "ConvTower",
    "FADDetectorMixin",
    "FADFCOS",
    "FADHead",
    "FADMaskHead",
    "FADMaskRCNN",
    "FADRetinaNet",
    "FADRetinaNetHead",
    "FADSearchMixin",
    "FADTowers",
    "make_resnext_stages",
]
