"""The detectron2 model: :class:`FADHead` and the :class:`FADFCOS` meta-architecture."""

from .backbone import make_resnext_stages
from .fad_fcos import FADFCOS
from .fad_head import FADHead

__all__ = ["FADFCOS", "FADHead", "make_resnext_stages"]
