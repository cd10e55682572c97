"""FADRetinaNet: detectron2's RetinaNet with a FAD head."""

from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.retinanet import RetinaNet

from .meta_arch import FADDetectorMixin

__all__ = ["FADRetinaNet"]


@META_ARCH_REGISTRY.register()
class FADRetinaNet(FADDetectorMixin, RetinaNet):
    """RetinaNet (anchors, losses, inference unchanged) whose head is a
    :class:`FADRetinaNetHead`.

    Takes the same arguments as detectron2's :class:`RetinaNet`; see :class:`FADDetectorMixin` for
    what it adds for the search.
    """
