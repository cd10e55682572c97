"""FAD heads: the box and class towers of a dense detector, and its predictors (METHOD.md 6).

A FAD head receives its towers, built by the config (``configs/common/models/towers.py``): a
:class:`~fad.nas.search_cells.SearchTower` to search, a :class:`~fad.nas.derived_cells.DerivedTower`
to train a searched architecture, or ``None`` for the detector's own conv tower. "Search mode" is
a head that holds search towers. :class:`FADTowers` holds what FCOS and RetinaNet share (towers,
reduce convs, wiring); :class:`FADHead` adds FCOS's predictors, :class:`FADRetinaNetHead`
RetinaNet's, as the original code's FAD heads did for both detectors.
"""

import math
from typing import List, Optional, Sequence, Tuple

import torch
from detectron2.layers import ShapeSpec
from torch import nn

from fad.nas.cell_base import Tower

__all__ = ["ConvTower", "FADHead", "FADRetinaNetHead", "FADTowers", "check_tower"]


class ConvTower(nn.Sequential):
    """A detector's own tower, for a tower that is not searched: ``num_convs`` x conv3x3 (-GN)
    -ReLU, with GroupNorm(32) as in FCOS's head or without, as in RetinaNet's.

    Called like a FAD tower, on all levels with the tower's inputs, it reads the last of them:
    the FPN feature (the class tower's inputs are ``(bbox_feature, feature)``).
    """

    def __init__(self, *, channels: int, num_convs: int, group_norm: bool):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            if group_norm:
                layers.append(nn.GroupNorm(32, channels))
            layers.append(nn.ReLU())
        super().__init__(*layers)
        _normal_init([self], 0.01)  # as detectron2's heads init their towers

    def forward(
        self, s0s: List[torch.Tensor], s1s: Optional[List[torch.Tensor]] = None
    ) -> List[torch.Tensor]:
        """
        Args:
            s0s, s1s: per level (N, C, Hi, Wi); the tower runs on ``s1s`` if given.

        Returns:
            per level (N, C, Hi, Wi).
        """
        return [super(ConvTower, self).forward(x) for x in (s0s if s1s is None else s1s)]


def check_tower(tower: Tower, *, name: str, channels: int, source: str) -> None:
    """Refuses what is not a FAD tower (search or derived) reading ``channels`` channels.

    Args:
        tower: the tower a head was given.
        name: what the messages call it (``"box tower"``).
        channels: the width of the features it reads; ``source`` names them (``"the FPN"``).
    """
    if not isinstance(tower, Tower):
        raise TypeError(f"the {name} must be a FAD tower, got {type(tower).__name__}")
    if tower.in_channels != channels:
        raise ValueError(
            f"the {name} reads {tower.in_channels} channels but {source} has {channels}: set its "
            f"in_channels to {channels}"
        )


def _normal_init(modules: Sequence[nn.Module], std: float) -> None:
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=std)
                nn.init.constant_(layer.bias, 0)


class FADTowers(nn.Module):
    """The box and class towers of a FAD head and their wiring (section 6).

    The box tower reads the FPN feature; ``box_reduce`` (1x1 conv) maps its output to
    ``bbox_feature``, which the box predictors read. The class tower reads
    ``(bbox_feature, feature)``, so it sees the box tower's result; ``cls_reduce`` maps its output
    to the feature the class predictor reads. A tower given as ``None`` is the detector's conv
    tower (no reduce conv), as in the original, where searching one tower was possible.

    Subclasses add the detector's predictors and ``forward``.

    Args:
        input_shape: shapes of the FPN levels (one channel count shared by all levels).
        box_tower, cls_tower: a FAD tower (:class:`~fad.nas.cell_base.Tower`: search or derived)
            whose inputs have the FPN width, or ``None`` for a :class:`ConvTower`.
        plain_num_convs: depth of a conv tower.
        plain_group_norm: whether a conv tower's convs have GroupNorm.
        reduce_init_std: std of the normal init of ``box_reduce`` and ``cls_reduce`` (0.01 in the
            original code); ``None`` keeps PyTorch's default init, as the towers do. The 0.01
            init puts two near-zero layers (reduce, then predictor) between the towers and the
            losses, which starves the towers of gradient early on: harmless over a COCO
            schedule, but costly in a short run from scratch (docs/BENCHMARKS.md).
    """

    def __init__(
        self,
        *,
        input_shape: List[ShapeSpec],
        box_tower: Optional[Tower],
        cls_tower: Optional[Tower],
        plain_num_convs: int,
        plain_group_norm: bool,
        reduce_init_std: Optional[float] = 0.01,
    ):
        super().__init__()
        channels = {s.channels for s in input_shape}
        if len(channels) != 1:
            raise ValueError(f"a FAD head needs one channel count on all levels, got {channels}")
        c = self.channels = channels.pop()
        self._num_levels = len(input_shape)
        towers, reduce = [], []
        for name, tower in (("box", box_tower), ("cls", cls_tower)):
            if tower is None:
                tower = ConvTower(
                    channels=c, num_convs=plain_num_convs, group_norm=plain_group_norm
                )
                reduce.append(nn.Identity())
            else:
                check_tower(tower, name=f"{name} tower", channels=c, source="the FPN")
                reduce.append(nn.Conv2d(tower.out_channels, c, 1))
            towers.append(tower)
        self.bbox_tower, self.cls_tower = towers
        self.box_reduce, self.cls_reduce = reduce
        if reduce_init_std is not None:
            _normal_init([self.box_reduce, self.cls_reduce], reduce_init_std)

    def _init_predictors(self, predictors: Sequence[nn.Module], prior_prob: float) -> None:
        """N(0, 0.01) weights and zero bias (section 6); the class logits' bias (the first
        predictor) from the focal loss prior."""
        _normal_init(predictors, 0.01)
        nn.init.constant_(predictors[0].bias, -math.log((1 - prior_prob) / prior_prob))

    def tower_features(
        self, features: List[torch.Tensor]
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Run the towers on every level, all levels in one call (a search tower prepares its
        parameters once for all of them).

        Args:
            features: FPN levels, each (N, C, Hi, Wi).

        Returns:
            per level, ``(bbox_feature, cls_feature)``, each (N, C, Hi, Wi).
        """
        if len(features) != self._num_levels:
            raise ValueError(f"expected {self._num_levels} feature levels, got {len(features)}")
        bbox_features = [self.box_reduce(b) for b in self.bbox_tower(features)]
        cls_out = self.cls_tower(bbox_features, features)
        return [(b, self.cls_reduce(c)) for b, c in zip(bbox_features, cls_out)]


class FADHead(FADTowers):
    """A drop-in head for detectron2's ``FCOS``: per level ``(logits, bbox_reg, ctrness)``.

    Box regression and centerness read ``bbox_feature``, the class logits the class tower's
    reduced output. A conv tower is FCOS's (conv3x3-GN-ReLU).

    Args:
        num_classes: number of foreground classes.
        fcos_num_convs: depth of a conv tower.
        prior_prob: prior of the class logits' bias init (focal loss).
        kwargs: ``input_shape``, the towers and ``reduce_init_std``, see :class:`FADTowers`.
    """

    def __init__(
        self, *, num_classes: int, fcos_num_convs: int = 4, prior_prob: float = 0.01, **kwargs
    ):
        super().__init__(plain_num_convs=fcos_num_convs, plain_group_norm=True, **kwargs)
        c = self.channels
        self.cls_score = nn.Conv2d(c, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(c, 4, 3, padding=1)
        self.ctrness = nn.Conv2d(c, 1, 3, padding=1)
        self._init_predictors([self.cls_score, self.bbox_pred, self.ctrness], prior_prob)

    def forward(
        self, features: List[torch.Tensor]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """
        Args:
            features: FPN levels, each (N, C, Hi, Wi).

        Returns:
            logits (N, K, Hi, Wi), bbox_reg (N, 4, Hi, Wi) and ctrness (N, 1, Hi, Wi) per level.
        """
        logits, bbox_reg, ctrness = [], [], []
        for bbox_feature, cls_feature in self.tower_features(features):
            bbox_reg.append(self.bbox_pred(bbox_feature))
            ctrness.append(self.ctrness(bbox_feature))
            logits.append(self.cls_score(cls_feature))
        return logits, bbox_reg, ctrness


class FADRetinaNetHead(FADTowers):
    """A drop-in head for detectron2's ``RetinaNet``: per level ``(logits, bbox_reg)``.

    Box deltas read ``bbox_feature``, the class logits the class tower's reduced output, for
    every anchor. A conv tower is RetinaNet's (conv3x3-ReLU, no norm), and the predictors start
    as in detectron2's ``RetinaNetHead``.

    Args:
        num_classes: number of foreground classes.
        num_anchors: anchors per location (9 for RetinaNet's 3 sizes x 3 aspect ratios).
        num_convs: depth of a conv tower.
        prior_prob: prior of the class logits' bias init (focal loss).
        kwargs: ``input_shape``, the towers and ``reduce_init_std``, see :class:`FADTowers`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        num_anchors: int,
        num_convs: int = 4,
        prior_prob: float = 0.01,
        **kwargs,
    ):
        super().__init__(plain_num_convs=num_convs, plain_group_norm=False, **kwargs)
        c = self.channels
        self.cls_score = nn.Conv2d(c, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(c, num_anchors * 4, 3, padding=1)
        self._init_predictors([self.cls_score, self.bbox_pred], prior_prob)

    def forward(
        self, features: List[torch.Tensor]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """
        Args:
            features: FPN levels, each (N, C, Hi, Wi).

        Returns:
            logits (N, A * K, Hi, Wi) and bbox_reg (N, A * 4, Hi, Wi) per level.
        """
        logits, bbox_reg = [], []
        for bbox_feature, cls_feature in self.tower_features(features):
            bbox_reg.append(self.bbox_pred(bbox_feature))
            logits.append(self.cls_score(cls_feature))
        return logits, bbox_reg
