"""Pieces shared by search and derived cells and towers (docs/METHOD.md sections 5 and 6)."""

import functools
import operator
from typing import Callable, Iterable, Optional, Sequence, Union

from torch import Tensor, nn

__all__ = ["Levels", "Tower", "bottleneck", "preprocess", "sum_edges"]

#: One input or output of a tower, (N, C, H, W), or one per FPN level.
Levels = Union[Tensor, Sequence[Tensor]]


def preprocess(in_channels: int, node_channels: int) -> nn.Module:
    """A cell input brought to the node width: 1x1 conv (bias) -> GN(32) -> ReLU, or nothing."""
    if in_channels == node_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, node_channels, 1),
        nn.GroupNorm(32, node_channels),
        nn.ReLU(inplace=True),
    )


def sum_edges(edges: Iterable[Tensor]) -> Tensor:
    """The sum of (N, C, H, W) tensors, without ``sum``'s extra ``0 + first``."""
    return functools.reduce(operator.add, edges)


def bottleneck(op: nn.Module, *, node_channels: int, op_channels: int, bias: bool) -> nn.ModuleList:
    """A cell edge's stages: 1x1 conv C_node -> C, ``op`` at width C, 1x1 conv C -> C_node
    (bias-free in search cells, with bias in derived ones, as in the original code)."""
    conv = functools.partial(nn.Conv2d, kernel_size=1, bias=bias)
    return nn.ModuleList([conv(node_channels, op_channels), op, conv(op_channels, node_channels)])


class Tower(nn.Module):
    """A chain of cells, ``s0, s1 = s1, cell(s0, s1)``, whose output is the last cell's; the box
    tower reads the FPN feature twice, the class tower ``(bbox_feature, feature)`` (section 6)."""

    cells: nn.ModuleList

    def forward(self, s0: Levels, s1: Optional[Levels] = None) -> Levels:
        """
        Args:
            s0: (N, C_in, H, W) first input, or a list of them, one per level.
            s1: the second input(s), as ``s0``; ``s0`` when omitted (the box tower).

        Returns:
            (N, num_nodes * C_node, H, W), or a list of them, one per level of ``s0``.
        """
        if isinstance(s0, Tensor):
            return self.forward([s0], None if s1 is None else [s1])[0]
        s1 = s0 if s1 is None else s1
        if len(s1) != len(s0):
            raise ValueError(f"{len(s0)} levels of s0 but {len(s1)} of s1")
        run = self._cell_runner()
        outs = []
        for a, b in zip(s0, s1):
            for cell in self.cells:
                a, b = b, run(cell, a, b)
            outs.append(b)
        return outs

    def _cell_runner(self) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
        return lambda cell, s0, s1: cell(s0, s1)

    def _build_cells(
        self, cell: Callable, *, in_channels: int, num_cells: int, num_nodes: int, **kw
    ) -> None:
        """Fill ``self.cells`` with ``cell(in_channels=(C_s0, C_s1), **kw)``: a cell's output,
        its ``num_nodes`` nodes of ``kw["node_channels"]``, is the next cell's s1, then s0."""
        self.in_channels = in_channels
        self.out_channels = kw["node_channels"] * num_nodes
        c = [in_channels] * 2 + [self.out_channels] * (num_cells - 1)
        self.cells = nn.ModuleList(cell(in_channels=c[k : k + 2], **kw) for k in range(num_cells))
