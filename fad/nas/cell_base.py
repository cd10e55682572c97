"""Pieces shared by search and derived cells and towers (docs/METHOD.md sections 5 and 6)."""

import functools
import operator
from typing import Callable, Iterable, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

__all__ = ["Cell", "Levels", "Tower", "sum_edges"]

#: One input or output of a tower, (N, C, H, W), or one per FPN level.
Levels = Union[Tensor, Sequence[Tensor]]


def sum_edges(edges: Iterable[Tensor]) -> Tensor:
    """The sum of (N, C, H, W) tensors, without ``sum``'s extra ``0 + first``."""
    return functools.reduce(operator.add, edges)


class Cell(nn.Module):
    """A cell's modules (docs/METHOD.md section 5): ``preprocess[k]`` brings input k to C_node
    (1x1 conv, GN(32), ReLU, if needed); edge ``dag[i][j]`` of node i is 1x1 conv C_node -> C,
    the op, 1x1 conv C -> C_node. Forward: s0, s1 (N, C_in, H, W) -> (N, num_nodes * C_node, H, W).

    Args:
        in_channels: channels of (s0, s1).
        node_channels: C_node, width of node states (the FPN width, 256).
        op_channels: C, width of the ops (96; 128 for the X-101 model).
        edges: per node, (op builder, source state) of each edge, a source (also in ``sources``)
            being 0 for s0, 1 for s1, k >= 2 for node k - 2.
        bias: whether the edges' 1x1 convs have biases (derived cells, not search cells).
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        node_channels: int,
        op_channels: int,
        edges: Sequence[Sequence[Tuple[Callable[[], nn.Module], int]]],
        bias: bool,
    ):
        super().__init__()
        c_node = node_channels
        self.preprocess = nn.ModuleList(
            nn.Identity()
            if c == c_node
            else nn.Sequential(nn.Conv2d(c, c_node, 1), nn.GroupNorm(32, c_node), nn.ReLU(True))
            for c in in_channels
        )
        conv = functools.partial(nn.Conv2d, kernel_size=1, bias=bias)

        def edge(make_op: Callable[[], nn.Module]) -> nn.ModuleList:
            op = make_op()  # before its convs, as in the original: the same seeded initialisation
            return nn.ModuleList([conv(c_node, op_channels), op, conv(op_channels, c_node)])

        self.dag = nn.ModuleList(nn.ModuleList(edge(op) for op, _ in node) for node in edges)
        self.sources = [[j for _, j in node] for node in edges]


class Tower(nn.Module):
    """A chain of cells, ``s0, s1 = s1, cell(s0, s1)``, whose output is the last cell's; the box
    tower reads the FPN feature twice, the class tower ``(bbox_feature, feature)`` (section 6)."""

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

    def _build_cells(self, cell: Callable, *, in_channels: int, num_cells: int, **kw) -> None:
        """Fill ``self.cells`` with ``cell(in_channels=(C_s0, C_s1), **kw)``: a cell's output (its
        nodes of ``kw["node_channels"]``) is the next cell's s1, then s0."""
        self.in_channels = in_channels
        self.out_channels = kw["node_channels"] * len(kw["edges"])
        c = [in_channels] * 2 + [self.out_channels] * (num_cells - 1)
        self.cells = nn.ModuleList(cell(in_channels=c[k : k + 2], **kw) for k in range(num_cells))
