"""What a detectron2 model with FAD towers adds for the search: dense detectors (FCOS and
RetinaNet) with a FAD head, and the shared search interface."""

from typing import Dict, List, Optional

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

__all__ = ["FADDetectorMixin", "FADSearchMixin"]


class FADSearchMixin:
    """What the search asks of a model with FAD towers, mixed into a detectron2 meta-architecture.

    Subclasses name their towers in :meth:`fad_towers`, and in ``TOWER_KEYS`` where a config
    builds each (what ``--genotype-file`` turns into derived towers). The mixin adds
    :meth:`arch_parameters` and :meth:`weight_parameters` (told apart by parameter name, see
    :mod:`fad.nas.search_cells`), :meth:`search_towers` and :meth:`genotypes`; with the
    subclass's :meth:`losses_with_frozen_features`, the alpha step's forward, ``search_net.py``,
    the trainer and the hooks serve every model alike.
    """

    #: Per tower name, the key of the tower's config under ``model``.
    TOWER_KEYS: Dict[str, str] = {}

    def fad_towers(self) -> Dict[str, nn.Module]:
        """Every tower a search could search, by name (``"box"``, ``"cls"``; ``"mask"``)."""
        raise NotImplementedError

    @property
    def search(self) -> bool:
        """Whether the model holds search towers (search mode)."""
        return bool(self.search_towers())

    def arch_parameters(self) -> List[nn.Parameter]:
        """The architecture weights: per search tower one tensor per node."""
        return arch_parameters(self)

    def arch_parameter_names(self) -> List[str]:
        """Names of the architecture weights in ``named_parameters()`` (for DDP to ignore)."""
        return [n for n, _ in named_arch_parameters(self)]

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every trainable parameter that is not an architecture weight."""
        return weight_parameters(self)

    def alpha_step_weights(self) -> List[nn.Parameter]:
        """The weights the alpha step's graph reaches: all but the backbone's, which
        :meth:`losses_with_frozen_features` runs without autograd (the second-order virtual
        step moves these)."""
        return [
            p
            for n, p in self.named_parameters()
            if p in set(self.weight_parameters()) and not n.startswith("backbone.")
        ]

    def search_towers(self) -> Dict[str, SearchTower]:
        """The search towers by name, in :meth:`fad_towers` order; empty if none."""
        return {n: t for n, t in self.fad_towers().items() if isinstance(t, SearchTower)}

    def genotypes(self, *, rank: str = "softmax") -> Dict[str, Optional[Genotype]]:
        """The genotype of every tower of :meth:`fad_towers` under the current architecture
        weights, ``None`` for a tower that is not searched.

        Raises:
            RuntimeError: for a model without search towers.
        """
        searched = self.search_towers()
        if not searched:
            raise RuntimeError("the model has no search towers: it has no architecture weights")
        return {
            n: searched[n].genotype(rank=rank) if n in searched else None for n in self.fad_towers()
        }


class FADDetectorMixin(FADSearchMixin):
    """Mixed into a detectron2 ``DenseDetector`` (``FCOS``, ``RetinaNet``) whose head is a FAD head.

    Losses, target assignment and inference stay the detector's. It takes the detector's
    arguments and ``fixed_canvas``, a :class:`FixedCanvas` that pads every batch to a fixed size
    per orientation (fixed shapes for CUDA graphs), and adds the search's methods
    (:class:`FADSearchMixin`) over the head's box and class towers.
    """

    head: FADTowers
    TOWER_KEYS = {"box": "head.box_tower", "cls": "head.cls_tower"}

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

    def fad_towers(self) -> Dict[str, nn.Module]:
        return {"box": self.head.bbox_tower, "cls": self.head.cls_tower}

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
