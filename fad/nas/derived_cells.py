"""Derived cell and tower: the discrete architecture a genotype names (docs/METHOD.md section 5)."""

import functools
from typing import Optional

import torch
from torch import Tensor

from fad.genotypes import GenotypeLike, as_genotype

from .cell_base import Cell, Tower, sum_edges
from .ops import build_op

__all__ = ["DerivedCell", "DerivedTower"]


class DerivedCell(Cell):
    """A cell with exactly its genotype's edges, each op built alone."""

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.preprocess[0](s0), self.preprocess[1](s1)]
        for edges, sources in zip(self.dag, self.sources):
            outs = [post(op(pre(states[j]))) for (pre, op, post), j in zip(edges, sources)]
            states.append(sum_edges(outs))
        return torch.cat(states[2:], dim=1)


class DerivedTower(Tower):
    """``num_cells`` derived cells of one genotype (2 when training, section 6).

    Args:
        genotype: a :class:`Genotype`, its text or its plain-data form.
        in_channels: channels of the tower inputs (the FPN width).
        op_channels: C, width of the ops (96, or 128 for the X-101 model).
        node_channels: C_node, width of node states; defaults to ``in_channels``.
        num_cells: cells in the tower.
        num_nodes: if given, the genotype must have this many nodes (the configured cell).
    """

    def __init__(
        self,
        *,
        genotype: GenotypeLike,
        in_channels: int = 256,
        op_channels: int = 96,
        node_channels: Optional[int] = None,
        num_cells: int = 2,
        num_nodes: Optional[int] = 3,
    ):
        super().__init__()
        self.genotype = as_genotype(genotype, num_nodes=num_nodes)
        build = functools.partial(build_op, channels=op_channels)
        edges = [[(functools.partial(build, op), j) for op, j in n] for n in self.genotype.normal]
        self._build_cells(
            DerivedCell,
            in_channels=in_channels,
            num_cells=num_cells,
            node_channels=node_channels or in_channels,
            op_channels=op_channels,
            edges=edges,
            bias=True,
        )
