"""Pieces shared by search and derived cells and towers (docs/METHOD.md sections 5 and 6)."""

import functools
import operator
from typing import Callable, Iterable, Optional, Tuple

import torch
from torch import nn

__all__ = ["Tower", "bottleneck", "preprocess", "sum_edges"]


def preprocess(in_channels: int, node_channels: int) -> nn.Module:
    """Bring a cell input to the node width: 1x1 conv (bias) -> GN(32) -> ReLU, or nothing.

    Args:
        in_channels: channels of the input state.
        node_channels: C_node, the width of every node state (the FPN width, 256).
    """
    if in_channels == node_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, node_channels, 1),
        nn.GroupNorm(32, node_channels),
        nn.ReLU(inplace=True),
    )


def sum_edges(edges: Iterable[torch.Tensor]) -> torch.Tensor:
    """A node's state: the sum of its incoming edges' outputs, each (N, C_node, H, W).

    Python's ``sum`` would start from the int 0 and spend a whole (N, C_node, H, W) addition on
    ``0 + first``: twice the work of the one addition a two-edge node needs.
    """
    return functools.reduce(operator.add, edges)


def bottleneck(op: nn.Module, *, node_channels: int, op_channels: int, bias: bool) -> nn.ModuleList:
    """The stages of a cell edge: 1x1 conv C_node -> C, the op at width C, 1x1 conv C -> C_node.

    The op runs at the narrower width C (96 by default), which is what makes a searched
    tower cheaper than its 256-wide node states suggest. Search edges use bias-free 1x1 convs,
    derived edges 1x1 convs with bias, as in the original code.
    """
    return nn.ModuleList(
        [
            nn.Conv2d(node_channels, op_channels, 1, bias=bias),
            op,
            nn.Conv2d(op_channels, node_channels, 1, bias=bias),
        ]
    )


class Tower(nn.Module):
    """A chain of cells: ``s0, s1 = s1, cell(s0, s1)``; the output is the last cell's output.

    Subclasses fill ``self.cells``. The box tower reads the FPN feature as both inputs; the class
    tower reads ``(bbox_feature, feature)``, so it sees the box tower's result (section 6).
    """

    cells: nn.ModuleList

    def _run(self, s0: torch.Tensor, s1: Optional[torch.Tensor], cell_fn: Callable) -> torch.Tensor:
        if s1 is None:
            s1 = s0
        for cell in self.cells:
            s0, s1 = s1, cell_fn(cell, s0, s1)
        return s1

    def _build_cells(
        self,
        make_cell: Callable[[Tuple[int, int]], nn.Module],
        *,
        in_channels: int,
        node_channels: int,
        num_cells: int,
        num_nodes: int,
    ) -> None:
        """Fill ``self.cells`` with ``make_cell((C_s0, C_s1))`` for each cell, and set
        ``self.out_channels``: a cell's output concatenates its ``num_nodes`` nodes, and the next
        cell reads it as s1 (and the one after as s0)."""
        self.out_channels = node_channels * num_nodes
        c_pp, c_p, cells = in_channels, in_channels, []
        for _ in range(num_cells):
            cells.append(make_cell((c_pp, c_p)))
            c_pp, c_p = c_p, self.out_channels
        self.cells = nn.ModuleList(cells)
