"""FADFCOS: detectron2's FCOS with a FAD head."""

from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.fcos import FCOS

from .meta_arch import FADDetectorMixin

__all__ = ["FADFCOS"]


@META_ARCH_REGISTRY.register()
class FADFCOS(FADDetectorMixin, FCOS):
    """FCOS (losses, target assignment, inference unchanged) whose head is a :class:`FADHead`.

    Takes the same arguments as detectron2's :class:`FCOS`; see :class:`FADDetectorMixin` for
    what it adds for the search.
    """
