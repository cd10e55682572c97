"""detectron2's FCOS, RetinaNet and Mask R-CNN (losses, targets and inference unchanged) with FAD
towers, and what the search asks of them."""

from typing import Dict, List, Optional

import torch
from detectron2.modeling import FCOS, META_ARCH_REGISTRY, GeneralizedRCNN, RetinaNet
from detectron2.structures import ImageList
from torch import nn

from fad.genotypes import Genotype
from fad.nas import search_cells
from fad.nas.search_cells import SearchTower
from fad.utils import frozen

from .canvas import FixedCanvas
from .fad_head import FADMaskHead, FADTowers


class FADSearchMixin:
    """What the search asks of a model with FAD towers, mixed into a detectron2 meta-architecture.
    Subclasses name their towers in :meth:`fad_towers`, and in ``TOWER_KEYS`` the config key of
    each under ``model`` (what ``--genotype-file`` turns into derived towers)."""

    TOWER_KEYS: Dict[str, str] = {}
    # Alphas and weights, told apart by parameter name.
    arch_parameters = search_cells.arch_parameters
    weight_parameters = search_cells.weight_parameters

    def fad_towers(self) -> Dict[str, nn.Module]:
        """Every tower a search could search, by name (``"box"``, ``"cls"``; ``"mask"``)."""
        raise NotImplementedError

    @property
    def search(self) -> bool:
        """Whether the model holds search towers (search mode)."""
        return bool(self.search_towers())

    def arch_parameter_names(self) -> List[str]:
        """Names of the architecture weights in ``named_parameters()`` (for DDP to ignore)."""
        return [n for n, _ in search_cells.named_arch_parameters(self)]

    def alpha_step_weights(self) -> List[nn.Parameter]:
        """The weights the alpha step's graph reaches (the second-order virtual step moves them):
        all but the backbone's, which :meth:`losses_with_frozen_features` freezes."""
        backbone = set(self.backbone.parameters())
        return [p for p in self.weight_parameters() if p not in backbone]

    def search_towers(self) -> Dict[str, SearchTower]:
        """The search towers by name, in :meth:`fad_towers` order; empty if none."""
        return {n: t for n, t in self.fad_towers().items() if isinstance(t, SearchTower)}

    def genotypes(self, *, rank: str = "softmax") -> Dict[str, Optional[Genotype]]:
        """The genotype of each tower of :meth:`fad_towers` under the current alphas (``rank``: see
        ``SearchTower.genotype``), ``None`` for a tower not searched; for search models only."""
        if not self.search:
            raise RuntimeError("the model has no search towers: it has no architecture weights")
        return {
            n: t.genotype(rank=rank) if isinstance(t, SearchTower) else None
            for n, t in self.fad_towers().items()
        }

    def losses_with_frozen_features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """The alpha step's forward: the training losses with the backbone frozen (the alphas are
        in the heads), which saves its backward and activations. It runs the detector's own
        forward, not ``self.forward``, which a trainer may wrap for the weight step; a dense
        detector's loss normaliser (an EMA of the positive count) is kept for the weight step."""
        normalizer = self.__dict__.get("loss_normalizer")
        with frozen(self.backbone.parameters()):
            losses = super().forward(batched_inputs)
        if normalizer is None:
            self.__dict__.pop("loss_normalizer", None)
        else:
            self.loss_normalizer = normalizer
        return losses


class FADDetectorMixin(FADSearchMixin):
    """Mixed into a detectron2 ``DenseDetector`` (``FCOS``, ``RetinaNet``) with a FAD head.

    Args:
        fixed_canvas: a :class:`FixedCanvas` (fixed batch shapes for CUDA graphs), or ``None``.
        kwargs: the detector's.
    """

    TOWER_KEYS = {"box": "head.box_tower", "cls": "head.cls_tower"}

    def __init__(self, *, fixed_canvas: Optional[FixedCanvas] = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(self.head, FADTowers):
            raise TypeError(f"the head must be a FAD head, got {type(self.head).__name__}")
        self.fixed_canvas = fixed_canvas

    def preprocess_image(self, batched_inputs: List[dict]) -> ImageList:
        images = super().preprocess_image(batched_inputs)
        if self.fixed_canvas is None:
            return images
        return self.fixed_canvas(images, size_divisibility=self.backbone.size_divisibility)

    def fad_towers(self) -> Dict[str, nn.Module]:
        return {"box": self.head.bbox_tower, "cls": self.head.cls_tower}

    def forward_training(self, images, features, predictions, gt_instances):
        """The detector's losses in float32: under autocast the head's outputs are half precision,
        and FCOS's GIoU loss fails on half predicted and float32 ground-truth boxes."""
        predictions = [[p.float() for p in outputs] for outputs in predictions]
        with torch.autocast(self.device.type, enabled=False):
            return super().forward_training(images, features, predictions, gt_instances)


@META_ARCH_REGISTRY.register()
class FADFCOS(FADDetectorMixin, FCOS):
    """FCOS whose head is a :class:`FADHead`; see :class:`FADDetectorMixin`."""


@META_ARCH_REGISTRY.register()
class FADRetinaNet(FADDetectorMixin, RetinaNet):
    """RetinaNet whose head is a :class:`FADRetinaNetHead`; see :class:`FADDetectorMixin`."""


@META_ARCH_REGISTRY.register()
class FADMaskRCNN(FADSearchMixin, GeneralizedRCNN):
    """Mask R-CNN whose ``roi_heads.mask_head`` is a :class:`FADMaskHead`; takes
    :class:`GeneralizedRCNN`'s arguments."""

    TOWER_KEYS = {"mask": "roi_heads.mask_head.tower"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        mask_head = getattr(self.roi_heads, "mask_head", None)
        if not isinstance(mask_head, FADMaskHead):
            raise TypeError(f"FADMaskRCNN needs a FADMaskHead, got {type(mask_head).__name__}")

    def fad_towers(self) -> Dict[str, nn.Module]:
        return {"mask": self.roi_heads.mask_head.tower}
