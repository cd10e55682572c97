"""Search cell and tower, and the split of any module's parameters into alphas and weights.

A cell runs its edges by groups (:func:`edge_groups`) in few kernel launches, which set a GPU's
pace (docs/BENCHMARKS.md; edge by edge: ``tests/nas/edgewise.py``): per group one pre 1x1 conv,
its stacked mixed ops and one post 1x1 conv, which sums each node's edges."""

import functools
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fad.genotypes import Genotype, derive_genotype, primitives

from .cell_base import Cell, Tower
from .mixed_op import MixedOp, RepShareMixedOp

__all__ = [
    "EdgeGroup",
    "SearchCell",
    "SearchTower",
    "arch_parameters",
    "edge_groups",
    "named_arch_parameters",
    "weight_parameters",
]


def named_arch_parameters(module: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """(name, alpha) of every architecture weight (named ``*.alphas.*``) of ``module``."""
    return [(n, p) for n, p in module.named_parameters() if "alphas" in n.split(".")]


def arch_parameters(module: nn.Module) -> List[nn.Parameter]:
    """The architecture weights of ``module`` (none without search towers)."""
    return [p for _, p in named_arch_parameters(module)]


def weight_parameters(module: nn.Module) -> List[nn.Parameter]:
    """Every trainable parameter of ``module`` that is not an architecture weight."""
    alphas = {id(p) for p in arch_parameters(module)}
    return [p for p in module.parameters() if p.requires_grad and id(p) not in alphas]


class EdgeGroup(NamedTuple):
    """Edges that run as one: from states ``sources`` to ``nodes``, consecutive up to the last."""

    sources: Tuple[int, ...]
    nodes: Tuple[int, ...]

    @property
    def edges(self) -> List[Tuple[int, int]]:
        """(node, source) of each edge, in channel order: node-major, sources inside."""
        return [(i, j) for i in self.nodes for j in self.sources]


def edge_groups(num_nodes: int) -> List[EdgeGroup]:
    """A search cell's edge groups in running order: from s0 and s1, then from each node."""
    rest = [EdgeGroup((k,), tuple(range(k - 1, num_nodes))) for k in range(2, 1 + num_nodes)]
    return [EdgeGroup((0, 1), tuple(range(num_nodes)))] + rest


class SearchCell(Cell):
    """A cell of the continuous relaxation: node i sums mixed edges from all 2 + i states."""

    def prepare(self, weights: Sequence[Tensor]) -> List[Tuple]:
        """The edges' parameters stacked by groups, candidate weights folded in, for all levels.

        Args:
            weights: per node i, softmaxed alphas of shape (2 + i, num_ops).

        Returns:
            Per group: it, its pre 1x1 kernels (all edges' node-major, then per source), stacked
            mixed ops and post kernels (len(nodes) * C_node, len(sources) * C, 1, 1).
        """
        prepared = []
        for g in edge_groups(len(self.dag)):
            pre = [torch.cat([self.dag[i][j][0].weight for i, j in g.edges])]
            if len(g.sources) > 1:  # one tensor in the box tower (one conv), two in the class's
                pre += [torch.cat([self.dag[i][j][0].weight for i in g.nodes]) for j in g.sources]
            post = [torch.cat([self.dag[i][j][2].weight for j in g.sources], 1) for i in g.nodes]
            mixed = [self.dag[i][j][1] for i, j in g.edges]
            ops = mixed[0].stacked(mixed, torch.stack([weights[i][j] for i, j in g.edges]))
            prepared.append((g, tuple(pre), ops, torch.cat(post)))
        return prepared

    def forward(self, s0: Tensor, s1: Tensor, prepared: List[Tuple]) -> Tensor:
        """The cell on ``prepared``, :meth:`prepare` of the tower's softmaxed alphas."""
        states = [self.preprocess[0](s0), self.preprocess[1](s1)]
        c_node = states[0].shape[1]
        pending = None  # partial sums of the nodes not yet complete, stacked along the channels
        for group, pre, ops, post in prepared:
            sources = [states[j] for j in group.sources]
            if all(s is sources[0] for s in sources):  # one input for all (the box tower)
                x = F.conv2d(sources[0], pre[0])
            else:  # (N, nodes, C, H, W) per source -> (N, nodes, sources, C, H, W): node-major
                ys = [F.conv2d(s, w) for s, w in zip(sources, pre[1:])]
                n, _, h, w = ys[0].shape
                ys = [y.view(n, len(group.nodes), -1, h, w) for y in ys]
                x = torch.stack(ys, dim=2).view(n, -1, h, w)
            y = F.conv2d(ops(x), post, groups=len(group.nodes))
            pending = y if pending is None else pending + y
            if pending.shape[1] == c_node:
                states.append(pending)
            else:  # split, not two slices: its backward is one cat, theirs two zero-filled copies
                node, pending = pending.split([c_node, pending.shape[1] - c_node], dim=1)
                states.append(node)
        return torch.cat(states[2:], dim=1)


class SearchTower(Tower):
    """Search cells sharing ``alphas``, a (2 + i, num_ops) parameter per node i, 1e-3 * N(0, 1).

    Args:
        in_channels: channels of the tower inputs (the FPN width).
        op_channels: C, width of the candidate ops (96; 128 for the X-101 model).
        node_channels: C_node; defaults to ``in_channels``.
        num_cells: cells in the tower (1 during the search in the paper).
        num_nodes: intermediate nodes per cell (3).
        dil3: search the 12-candidate space with dilation-3 variants.
        share: representation sharing (the FAD op); ``False`` for the plain DARTS ablation.
    """

    def __init__(
        self,
        *,
        in_channels: int = 256,
        op_channels: int = 96,
        node_channels: Optional[int] = None,
        num_cells: int = 1,
        num_nodes: int = 3,
        dil3: bool = False,
        share: bool = True,
    ):
        super().__init__()
        self.dil3, self.num_nodes, self.op_channels = dil3, num_nodes, op_channels
        num_ops = len(primitives(dil3=dil3))
        self.alphas = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(2 + i, num_ops)) for i in range(num_nodes)
        )
        mixed_op = functools.partial(
            RepShareMixedOp if share else MixedOp, channels=op_channels, dil3=dil3
        )
        self._build_cells(
            SearchCell,
            in_channels=in_channels,
            num_cells=num_cells,
            node_channels=node_channels or in_channels,
            op_channels=op_channels,
            edges=[[(mixed_op, j) for j in range(2 + i)] for i in range(num_nodes)],
            bias=False,
        )

    def _cell_runner(self):
        """The alphas softmaxed, and the cells' parameters stacked, once for all levels."""
        weights = [a.softmax(dim=-1) for a in self.alphas]
        prepared = {cell: cell.prepare(weights) for cell in self.cells}
        return lambda cell, s0, s1: cell(s0, s1, prepared[cell])

    def expected_cost(self, op_costs: Tensor) -> Tensor:
        """The cost-aware search's term: ``sum_k softmax(alpha_e)_k * op_costs[k]``, summed over
        every edge of every cell.

        Args:
            op_costs: (num_ops,) cost of each candidate, in alpha order, ``none`` (0) last.

        Returns:
            A scalar tensor.
        """
        num_ops = self.alphas[0].shape[-1]
        if tuple(op_costs.shape) != (num_ops,):
            raise ValueError(
                f"op_costs must have shape ({num_ops},), one cost per candidate, "
                f"got {tuple(op_costs.shape)}"
            )
        weights = torch.cat([a.softmax(dim=-1) for a in self.alphas])  # (edges, num_ops)
        return len(self.cells) * (weights @ op_costs.to(weights)).sum()

    def genotype(self, *, rank: str = "softmax") -> Genotype:
        """The discrete cell the current alphas stand for (see :func:`derive_genotype`)."""
        return derive_genotype(list(self.alphas), dil3=self.dil3, rank=rank)
