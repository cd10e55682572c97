"""Derived cell and tower: the discrete architecture a genotype names (docs/METHOD.md section 5)."""

import functools
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from fad.genotypes import Genotype, GenotypeLike, as_genotype

from .cell_base import Tower, bottleneck, preprocess, sum_edges
from .ops import build_op

__all__ = ["DerivedCell", "DerivedTower"]


class DerivedCell(nn.Module):
    """A cell with exactly its genotype's edges, each op built alone.

    Args:
        genotype: the cell's genotype.
        in_channels: channels of (s0, s1), pre-processed where they are not ``node_channels``.
        node_channels, op_channels: as :class:`DerivedTower`'s.
    """

    def __init__(
        self,
        *,
        genotype: Genotype,
        in_channels: Sequence[int],
        node_channels: int,
        op_channels: int,
    ):
        super().__init__()
        self.preprocess = nn.ModuleList(preprocess(c, node_channels) for c in in_channels)
        self.sources = [[src for _, src in node] for node in genotype.normal]
        edge = functools.partial(
            bottleneck, node_channels=node_channels, op_channels=op_channels, bias=True
        )
        self.dag = nn.ModuleList(
            nn.ModuleList(edge(build_op(op, channels=op_channels)) for op, _ in node)
            for node in genotype.normal
        )

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        """
        Args:
            s0, s1: (N, C_in, H, W) cell inputs.

        Returns:
            (N, num_nodes * C_node, H, W).
        """
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
        self._build_cells(
            functools.partial(DerivedCell, genotype=self.genotype),
            in_channels=in_channels,
            num_cells=num_cells,
            num_nodes=self.genotype.num_nodes,
            node_channels=node_channels or in_channels,
            op_channels=op_channels,
        )
