"""FAD heads: towers built by the config (``configs/common/models/towers.py``) in the heads of
FCOS and RetinaNet (docs/METHOD.md section 6) and in Mask R-CNN's mask head (section 11)."""

import math
from typing import Any, Dict, List, Optional, Tuple

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec
from detectron2.modeling.roi_heads import BaseMaskRCNNHead
from torch import nn

from fad.nas.cell_base import Tower


def _normal_init(std: float, *modules: nn.Module) -> None:
    for layer in (m for module in modules for m in module.modules()):
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, std=std)
            nn.init.constant_(layer.bias, 0)


def check_tower(tower: Tower, *, name: str, channels: int, source: str) -> None:
    """Refuses what is not a FAD tower (search or derived) reading ``channels`` channels.

    Args:
        tower, name: the tower a head was given and what the messages call it (``"box tower"``).
        channels, source: the width of the features it reads and their name (``"the FPN"``).
    """
    if not isinstance(tower, Tower):
        raise TypeError(f"the {name} must be a FAD tower, got {type(tower).__name__}")
    if tower.in_channels != channels:
        raise ValueError(
            f"the {name} reads {tower.in_channels} channels but {source} has {channels}: set its "
            f"in_channels to {channels}"
        )


class ConvTower(nn.Sequential):
    """The detector's own tower, for a tower not searched: ``num_convs`` x conv3x3(-GN)-ReLU, with
    GroupNorm(32) as in FCOS's head or without, as in RetinaNet's. Called like a FAD tower, it
    reads its last input, the FPN feature (the class tower's are ``(bbox_feature, feature)``)."""

    def __init__(self, *, channels: int, num_convs: int, group_norm: bool):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            layers += [nn.GroupNorm(32, channels), nn.ReLU()] if group_norm else [nn.ReLU()]
        super().__init__(*layers)
        _normal_init(0.01, self)  # as detectron2's heads init their towers

    def forward(self, *inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """
        Args:
            inputs: ``s0s`` and optionally ``s1s``, per level (N, C, Hi, Wi).

        Returns:
            per level (N, C, Hi, Wi), the convs on the last of ``inputs``.
        """
        return [nn.Sequential.forward(self, x) for x in inputs[-1]]


class FADTowers(nn.Module):
    """A FAD head's towers, wiring and predictors: ``box_reduce`` (1x1) maps the box tower's output
    to ``bbox_feature``; the class tower reads ``(bbox_feature, feature)``, ``cls_reduce`` maps
    its output to what ``cls_score`` reads.

    Args:
        input_shape: shapes of the FPN levels (one channel count on all levels).
        box_tower, cls_tower: a FAD tower (search or derived) reading the FPN width, or ``None``
            for a :class:`ConvTower` of arguments ``plain`` (and no reduce conv).
        predictors: output channels per predictor (3x3 convs): ``cls_score`` and box ones.
        prior_prob: prior of the class logits' bias init (focal loss).
        reduce_init_std: std of the reduce convs' normal init (0.01 in the original code); ``None``
            keeps PyTorch's, as the towers do (0.01 starves them of gradient early on, costly in
            a short run from scratch: docs/BENCHMARKS.md).
    """

    def __init__(
        self,
        *,
        input_shape: List[ShapeSpec],
        box_tower: Optional[Tower],
        cls_tower: Optional[Tower],
        plain: Dict[str, Any],
        predictors: Dict[str, int],
        prior_prob: float = 0.01,
        reduce_init_std: Optional[float] = 0.01,
    ):
        super().__init__()
        channels = {s.channels for s in input_shape}
        if len(channels) != 1:
            raise ValueError(f"a FAD head needs one channel count on all levels, got {channels}")
        c = channels.pop()
        self.num_levels = len(input_shape)
        towers, reduces = [], []
        for name, tower in (("box", box_tower), ("cls", cls_tower)):
            if tower is None:
                towers.append(ConvTower(channels=c, **plain))
                reduces.append(nn.Identity())
            else:
                check_tower(tower, name=f"{name} tower", channels=c, source="the FPN")
                towers.append(tower)
                reduces.append(nn.Conv2d(tower.out_channels, c, 1))
        self.bbox_tower, self.cls_tower = towers
        self.box_reduce, self.cls_reduce = reduces
        if reduce_init_std is not None:
            _normal_init(reduce_init_std, *reduces)
        self._predictors = list(predictors)
        for name, out_channels in predictors.items():
            setattr(self, name, nn.Conv2d(c, out_channels, 3, padding=1))
        # N(0, 0.01) weights, zero bias (section 6); the class logits' bias from the prior.
        _normal_init(0.01, *(getattr(self, name) for name in self._predictors))
        nn.init.constant_(self.cls_score.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features: List[torch.Tensor]) -> Tuple[List[torch.Tensor], ...]:
        """
        Args:
            features: FPN levels, each (N, C, Hi, Wi); each tower runs once on all of them.

        Returns:
            per predictor, per level (N, P, Hi, Wi).
        """
        if len(features) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} feature levels, got {len(features)}")
        bbox_features = [self.box_reduce(b) for b in self.bbox_tower(features)]
        cls_features = [self.cls_reduce(c) for c in self.cls_tower(bbox_features, features)]
        levels = list(zip(bbox_features, cls_features))
        return tuple(
            [getattr(self, p)(c if p == "cls_score" else b) for b, c in levels]
            for p in self._predictors
        )


class FADHead(FADTowers):
    """A drop-in head for detectron2's ``FCOS``: per level ``(logits, bbox_reg, ctrness)``, each
    (N, K | 4 | 1, Hi, Wi). A conv tower is FCOS's (conv3x3-GN-ReLU).

    Args:
        num_classes: number of foreground classes.
        fcos_num_convs: depth of a conv tower.
        kwargs: the towers, ``input_shape``, ``prior_prob``, ``reduce_init_std`` (FADTowers).
    """

    def __init__(self, *, num_classes: int, fcos_num_convs: int = 4, **kwargs):
        predictors = {"cls_score": num_classes, "bbox_pred": 4, "ctrness": 1}
        super().__init__(
            plain=dict(num_convs=fcos_num_convs, group_norm=True), predictors=predictors, **kwargs
        )


class FADRetinaNetHead(FADTowers):
    """A drop-in head for detectron2's ``RetinaNet``: per level ``(logits, bbox_reg)``, each
    (N, A * K | A * 4, Hi, Wi). A conv tower is RetinaNet's (conv3x3-ReLU, no norm).

    Args:
        num_classes: number of foreground classes.
        num_anchors: A, anchors per location (9: RetinaNet's 3 sizes x 3 aspect ratios).
        num_convs: depth of a conv tower.
        kwargs: the towers, ``input_shape``, ``prior_prob``, ``reduce_init_std`` (FADTowers).
    """

    def __init__(self, *, num_classes: int, num_anchors: int, num_convs: int = 4, **kwargs):
        predictors = {"cls_score": num_anchors * num_classes, "bbox_pred": num_anchors * 4}
        super().__init__(
            plain=dict(num_convs=num_convs, group_norm=False), predictors=predictors, **kwargs
        )


class FADMaskHead(BaseMaskRCNNHead):
    """``MaskRCNNConvUpsampleHead`` with a FAD tower in place of its four 3x3 convs, then a 1x1
    ``mask_reduce`` conv back to the RoI width, detectron2's 2x2 deconv, ReLU and predictor.

    Args:
        input_shape: the pooled RoI features (256 channels, 14x14 in Mask R-CNN R-50 FPN).
        tower: a FAD tower (search or derived) reading the RoI feature as both its inputs.
        num_classes: foreground classes; 1 for class-agnostic masks.
        kwargs: ``loss_weight`` and ``vis_period``, see detectron2's ``BaseMaskRCNNHead``.
    """

    def __init__(self, *, input_shape: ShapeSpec, tower: Tower, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        c = input_shape.channels
        check_tower(tower, name="mask tower", channels=c, source="the RoI feature")
        self.tower = tower
        self.mask_reduce = Conv2d(tower.out_channels, c, kernel_size=1)
        self.deconv = ConvTranspose2d(c, c, kernel_size=2, stride=2)
        self.predictor = Conv2d(c, num_classes, kernel_size=1)
        # As MaskRCNNConvUpsampleHead's; the tower keeps PyTorch's init, as the detector towers.
        for layer in (self.mask_reduce, self.deconv):
            weight_init.c2_msra_fill(layer)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.constant_(self.predictor.bias, 0)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (R, C, 14, 14) RoI features.

        Returns:
            (R, num_classes, 28, 28) mask logits.
        """
        return self.predictor(torch.relu(self.deconv(self.mask_reduce(self.tower(x)))))
