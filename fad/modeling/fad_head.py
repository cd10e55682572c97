"""FAD heads: the searched box and class towers of a dense detector (docs/METHOD.md section 6).

:class:`FADTowers` holds what FCOS and RetinaNet share: the two towers (searched, derived, or the
detector's plain conv tower), their 1x1 reduce convs and the wiring between them.
:class:`FADHead` adds FCOS's predictors, :class:`FADRetinaNetHead` RetinaNet's, as the original
code's FAD heads did for both detectors.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.layers import ShapeSpec
from torch import nn

from fad.genotypes import Genotype, GenotypeLike
from fad.nas.derived_cells import DerivedTower
from fad.nas.search_cells import SearchTower

__all__ = ["FADHead", "FADRetinaNetHead", "FADTowers"]

TOWERS = ("box", "cls")


def _conv_tower(channels: int, num_convs: int, *, group_norm: bool) -> nn.Sequential:
    """A detector's own tower, for a tower that is not searched: ``num_convs`` x conv3x3 (-GN)
    -ReLU, with GroupNorm(32) as in FCOS's head or without, as in RetinaNet's."""
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(channels, channels, 3, padding=1))
        if group_norm:
            layers.append(nn.GroupNorm(32, channels))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


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
    to the feature the class predictor reads. A tower left out of ``towers`` is the detector's
    plain conv tower (no reduce conv), as in the original, where searching one tower was possible.

    Subclasses add the detector's predictors and ``forward``.

    Args:
        input_shape: shapes of the FPN levels (one channel count shared by all levels).
        search: build search towers with architecture weights (search mode); otherwise build
            derived towers from the genotypes.
        towers: which towers are FAD towers, a subset of ``("box", "cls")``.
        box_genotype, cls_genotype: derived mode: the genotypes of the FAD towers, as
            :class:`Genotype`, its text, or its plain-data form (so configs can hold them).
        op_channels: C, width of the candidate ops (96; 128 for the X-101 model).
        num_cells: cells per FAD tower; ``None`` means the paper's 1 in search, 2 in training.
        num_nodes: intermediate nodes per cell.
        dil3: search mode: the 12-candidate space with dilation-3 ops.
        share: search mode: representation sharing (``False``: plain DARTS mixed ops).
        grouped_edges: search mode: run each cell's edges by groups, as grouped convs (the same
            function with fewer ops, for GPUs; see :class:`SearchTower`). ``None``:
            on CUDA devices only.
        plain_num_convs: depth of a plain tower.
        plain_group_norm: whether a plain tower's convs have GroupNorm.
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
        search: bool = False,
        towers: Sequence[str] = TOWERS,
        box_genotype: Optional[GenotypeLike] = None,
        cls_genotype: Optional[GenotypeLike] = None,
        op_channels: int = 96,
        num_cells: Optional[int] = None,
        num_nodes: int = 3,
        dil3: bool = False,
        share: bool = True,
        grouped_edges: Optional[bool] = None,
        plain_num_convs: int = 4,
        plain_group_norm: bool = True,
        reduce_init_std: Optional[float] = 0.01,
    ):
        super().__init__()
        channels = {s.channels for s in input_shape}
        if len(channels) != 1:
            raise ValueError(f"a FAD head needs one channel count on all levels, got {channels}")
        c = channels.pop()
        if set(towers) - set(TOWERS):
            raise ValueError(f"towers must be a subset of {TOWERS}, got {tuple(towers)}")
        self.channels = c
        self.search = search
        self.towers = tuple(t for t in TOWERS if t in towers)
        self._num_levels = len(input_shape)
        num_cells = num_cells or (1 if search else 2)
        genotypes = {"box": box_genotype, "cls": cls_genotype}

        def fad_tower(name: str) -> nn.Module:
            if search:
                return SearchTower(
                    in_channels=c,
                    op_channels=op_channels,
                    num_cells=num_cells,
                    num_nodes=num_nodes,
                    dil3=dil3,
                    share=share,
                    grouped_edges=grouped_edges,
                )
            if genotypes[name] is None:
                raise ValueError(f"a derived FAD {name} tower needs {name}_genotype")
            try:
                return DerivedTower(
                    genotype=genotypes[name],
                    in_channels=c,
                    op_channels=op_channels,
                    num_cells=num_cells,
                    num_nodes=num_nodes,
                )
            except ValueError as e:
                raise ValueError(
                    f"{name}_genotype does not fit the configured cells: {e}"
                ) from None

        plain = [name for name in TOWERS if name not in self.towers]
        tower = {
            n: fad_tower(n)
            if n in self.towers
            else _conv_tower(c, plain_num_convs, group_norm=plain_group_norm)
            for n in TOWERS
        }
        reduce = {
            n: nn.Identity() if n in plain else nn.Conv2d(c * num_nodes, c, 1) for n in TOWERS
        }
        self.bbox_tower, self.cls_tower = tower["box"], tower["cls"]
        self.box_reduce, self.cls_reduce = reduce["box"], reduce["cls"]
        # Plain towers start from N(0, 0.01) with zero bias, as detectron2's heads do; the
        # searched towers keep PyTorch's init (section 6).
        _normal_init([tower[name] for name in plain], 0.01)
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
        """Run the towers on every level.

        Args:
            features: FPN levels, each (N, C, Hi, Wi).

        Returns:
            per level, ``(bbox_feature, cls_feature)``, each (N, C, Hi, Wi).
        """
        if len(features) != self._num_levels:
            raise ValueError(f"expected {self._num_levels} feature levels, got {len(features)}")
        # A FAD tower takes all levels in one call (a search tower prepares its parameters once).
        if "box" in self.towers:
            box_out = self.bbox_tower(features)
        else:
            box_out = [self.bbox_tower(f) for f in features]
        bbox_features = [self.box_reduce(b) for b in box_out]
        if "cls" in self.towers:
            cls_out = self.cls_tower(bbox_features, features)
        else:
            cls_out = [self.cls_tower(f) for f in features]
        return [(b, self.cls_reduce(c)) for b, c in zip(bbox_features, cls_out)]

    def search_towers(self) -> Dict[str, SearchTower]:
        """The searched towers by name (``"box"`` first, then ``"cls"``); empty in derived mode."""
        if not self.search:
            return {}
        towers = {"box": self.bbox_tower, "cls": self.cls_tower}
        return {name: towers[name] for name in self.towers}

    def genotypes(self, *, rank: str = "softmax") -> Tuple[Optional[Genotype], Optional[Genotype]]:
        """(box, cls) genotypes of the searched towers; ``None`` for a tower not searched.

        Raises:
            RuntimeError: in derived mode, which has no architecture weights.
        """
        if not self.search:
            raise RuntimeError("the head is in derived mode: it has no architecture weights")
        found = {name: tower.genotype(rank=rank) for name, tower in self.search_towers().items()}
        return found.get("box"), found.get("cls")


class FADHead(FADTowers):
    """A drop-in head for detectron2's ``FCOS``: per level ``(logits, bbox_reg, ctrness)``.

    Box regression and centerness read ``bbox_feature``, the class logits the class tower's
    reduced output. A plain tower is FCOS's (conv3x3-GN-ReLU).

    Args:
        num_classes: number of foreground classes.
        fcos_num_convs: depth of a plain FCOS tower.
        prior_prob: prior of the class logits' bias init (focal loss).
        kwargs: the towers' options, see :class:`FADTowers`.
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
    every anchor. A plain tower is RetinaNet's (conv3x3-ReLU, no norm), and the predictors start
    as in detectron2's ``RetinaNetHead``.

    Args:
        num_classes: number of foreground classes.
        num_anchors: anchors per location (9 for RetinaNet's 3 sizes x 3 aspect ratios).
        num_convs: depth of a plain RetinaNet tower.
        prior_prob: prior of the class logits' bias init (focal loss).
        kwargs: the towers' options, see :class:`FADTowers`.
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
