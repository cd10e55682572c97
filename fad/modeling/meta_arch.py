"""What a detectron2 dense detector with a FAD head adds for the search (FCOS and RetinaNet)."""

from typing import Dict, List, Optional, Tuple

import torch
from detectron2.structures import ImageList
from torch import nn

from fad.genotypes import Genotype
from fad.nas.search_cells import (
    SearchTower,
    arch_parameters,
    named_arch_parameters,
    weight_parameters,
)

from .canvas import FixedCanvas
from .fad_head import FADTowers

__all__ = ["FADDetectorMixin"]


class FADDetectorMixin:
    """Mixed into a detectron2 ``DenseDetector`` (``FCOS``, ``RetinaNet``) whose head is a FAD head.

    Losses, target assignment and inference stay the detector's. It takes the detector's
    arguments and ``fixed_canvas``, a :class:`FixedCanvas` that pads every batch to a fixed size
    per orientation (fixed shapes for CUDA graphs). For the search it adds
    :meth:`arch_parameters`, :meth:`weight_parameters` (told apart by parameter name, see
    :mod:`fad.nas.search_cells`), :meth:`search_towers`, :meth:`genotypes` and
    :meth:`losses_with_frozen_features`, the alpha step's forward; so ``search_net.py``, the
    trainer and the hooks serve every detector alike.
    """

    head: FADTowers

    def __init__(self, *, fixed_canvas: Optional[FixedCanvas] = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(self.head, FADTowers):
            raise TypeError(
                f"{type(self).__name__} needs a FAD head, got {type(self.head).__name__}"
            )
        self.fixed_canvas = fixed_canvas

    def preprocess_image(self, batched_inputs: List[dict]) -> ImageList:
        """The detector's normalised, padded batch; padded further to ``fixed_canvas`` if one is
        set (:mod:`fad.modeling.canvas`: fixed shapes for CUDA graphs; image sizes unchanged)."""
        images = super().preprocess_image(batched_inputs)
        if self.fixed_canvas is None:
            return images
        return self.fixed_canvas(images, size_divisibility=self.backbone.size_divisibility)

    @property
    def search(self) -> bool:
        """Whether the model holds search towers (search mode)."""
        return bool(self.head.search_towers())

    def arch_parameters(self) -> List[nn.Parameter]:
        """The architecture weights: per searched tower (box first) one tensor per node."""
        return arch_parameters(self)

    def arch_parameter_names(self) -> List[str]:
        """Names of the architecture weights in ``named_parameters()`` (for DDP to ignore)."""
        return [n for n, _ in named_arch_parameters(self)]

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every trainable parameter that is not an architecture weight."""
        return weight_parameters(self)

    def search_towers(self) -> Dict[str, SearchTower]:
        """The search towers by name (``"box"``, ``"cls"``); empty if none."""
        return self.head.search_towers()

    def genotypes(self, *, rank: str = "softmax") -> Tuple[Optional[Genotype], Optional[Genotype]]:
        """(box, cls) genotypes of the current architecture weights (``None``: not searched)."""
        return self.head.genotypes(rank=rank)

    def forward_training(self, images, features, predictions, gt_instances):
        """The detector's losses, always computed in float32.

        Under autocast (``train.amp.enabled``) the head's outputs are float16 or bfloat16, and
        FCOS's GIoU loss (fvcore's ``giou_loss``) fails on the mix of half-precision predicted
        and float32 ground-truth boxes; the losses' sums and logarithms want float32 anyway.
        """
        predictions = [[p.float() for p in outputs] for outputs in predictions]
        with torch.autocast(self.device.type, enabled=False):
            return super().forward_training(images, features, predictions, gt_instances)

    def losses_with_frozen_features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Training losses with the backbone run without autograd.

        The alpha step needs gradients for the architecture weights only, which live in the
        head; running the backbone and FPN without a graph saves their backward and the memory
        of their activations. The loss normaliser (an EMA of the positive count) is left as it
        was, so alpha steps, and the several forwards of a second-order step, do not change how
        the weight step normalises its loss.
        """
        images = self.preprocess_image(batched_inputs)
        with torch.no_grad():
            features = self.backbone(images.tensor)
        features = [features[f] for f in self.head_in_features]
        predictions = self.head(features)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        normalizer = self.__dict__.get("loss_normalizer")
        losses = self.forward_training(images, features, predictions, gt_instances)
        if normalizer is None:
            self.__dict__.pop("loss_normalizer", None)
        else:
            self.loss_normalizer = normalizer
        return losses
