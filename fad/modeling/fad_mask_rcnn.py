"""FADMaskRCNN: detectron2's Mask R-CNN whose mask head is a :class:`FADMaskHead`."""

from typing import Dict, List

import torch
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.rcnn import GeneralizedRCNN
from torch import nn

from fad.utils import frozen

from .mask_head import FADMaskHead
from .meta_arch import FADSearchMixin

__all__ = ["FADMaskRCNN"]


@META_ARCH_REGISTRY.register()
class FADMaskRCNN(FADSearchMixin, GeneralizedRCNN):
    """Mask R-CNN (RPN, box head, losses and inference unchanged) with a FAD mask tower.

    Takes the same arguments as detectron2's :class:`GeneralizedRCNN`; its ``roi_heads`` must
    have a :class:`FADMaskHead`. See :class:`FADSearchMixin` for what it adds for the search.
    """

    TOWER_KEYS = {"mask": "roi_heads.mask_head.tower"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        mask_head = getattr(self.roi_heads, "mask_head", None)
        if not isinstance(mask_head, FADMaskHead):
            raise TypeError(
                f"FADMaskRCNN needs a FADMaskHead as roi_heads.mask_head, got "
                f"{type(mask_head).__name__}"
            )

    def fad_towers(self) -> Dict[str, nn.Module]:
        return {"mask": self.roi_heads.mask_head.tower}

    def losses_with_frozen_features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Mask R-CNN's training losses with the backbone's weights frozen.

        The alpha step's loss is the model's total loss on the arch batch (only the mask loss
        reaches the mask tower's alphas); the backbone and FPN, which hold no alphas, build no
        graph, which saves their backward and the memory of their activations.
        """
        with frozen(self.backbone.parameters()):
            return self(batched_inputs)
