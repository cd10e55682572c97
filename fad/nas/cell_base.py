"""Pieces shared by search and derived cells and towers (docs/METHOD.md sections 5 and 6)."""

import functools
import operator
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

__all__ = ["Levels", "Tower", "bottleneck", "preprocess", "sum_edges"]

#: One input or output of a tower, (N, C, H, W), or one per FPN level.
Levels = Union[torch.Tensor, Sequence[torch.Tensor]]


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

    Subclasses fill ``self.cells`` and define :meth:`forward_levels`. The box tower reads the FPN
    feature as both inputs; the class tower reads ``(bbox_feature, feature)``, so it sees the box
    tower's result (section 6). A tower takes one level or all FPN levels in one call; given all,
    it may share work across them (the search tower prepares its parameters once).
    """

    cells: nn.ModuleList

    def forward(self, s0: Levels, s1: Optional[Levels] = None) -> Levels:
        """
        Args:
            s0: (N, C_in, H, W) first input, or a list of them, one per level.
            s1: the second input(s), as ``s0``; ``s0`` when omitted (the box tower).

        Returns:
            (N, num_nodes * C_node, H, W), or a list of them, one per level of ``s0``.
        """
        if isinstance(s0, torch.Tensor):
            return self.forward_levels([s0], None if s1 is None else [s1])[0]
        return self.forward_levels(s0, s1)

    def forward_levels(
        self, s0s: Sequence[torch.Tensor], s1s: Optional[Sequence[torch.Tensor]] = None
    ) -> List[torch.Tensor]:
        """The tower on each level: ``s0s[k]`` and ``s1s[k]`` (or ``s0s[k]`` twice) per level."""
        raise NotImplementedError

    def _run_levels(
        self, s0s: Sequence[torch.Tensor], s1s: Optional[Sequence[torch.Tensor]], cell_fn: Callable
    ) -> List[torch.Tensor]:
        if s1s is None:
            s1s = [None] * len(s0s)
        if len(s1s) != len(s0s):
            raise ValueError(f"{len(s0s)} levels of s0 but {len(s1s)} of s1")
        return [self._run(s0, s1, cell_fn) for s0, s1 in zip(s0s, s1s)]

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
        ``self.in_channels`` and ``self.out_channels``: a cell's output concatenates its
        ``num_nodes`` nodes, and the next cell reads it as s1 (and the one after as s0)."""
        self.in_channels = in_channels
        self.out_channels = node_channels * num_nodes
        c_pp, c_p, cells = in_channels, in_channels, []
        for _ in range(num_cells):
            cells.append(make_cell((c_pp, c_p)))
            c_pp, c_p = c_p, self.out_channels
        self.cells = nn.ModuleList(cells)
