"""Search cell and search tower: every edge a mixed op, weighted by the tower's alphas.

A search tower keeps its architecture weights in the parameter list ``alphas``, so a model's
parameter names tell them from the weights: :func:`arch_parameters` and
:func:`weight_parameters` (pt.darts' ``alphas()`` / ``weights()`` split, by name) are the one
place that does, for any module that holds search towers.
"""

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from fad.genotypes import Genotype, derive_genotype, primitives

from .cell_base import Tower, bottleneck, preprocess, sum_edges
from .grouped_cell import grouped_cell_forward, prepare_cell
from .mixed_op import MixedOp, RepShareMixedOp
from .ops import on_cuda_path

__all__ = [
    "SearchCell",
    "SearchTower",
    "arch_parameters",
    "is_arch_parameter",
    "named_arch_parameters",
    "weight_parameters",
]

#: The attribute under which a search tower keeps its alphas.
ALPHAS = "alphas"


def is_arch_parameter(name: str) -> bool:
    """Whether a parameter name (as ``named_parameters()`` gives it) names an alpha."""
    return ALPHAS in name.split(".")


def named_arch_parameters(module: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """(name, alpha) of every architecture weight of ``module``, in registration order."""
    return [(n, p) for n, p in module.named_parameters() if is_arch_parameter(n)]


def arch_parameters(module: nn.Module) -> List[nn.Parameter]:
    """The architecture weights of ``module`` (none for a module without search towers)."""
    return [p for _, p in named_arch_parameters(module)]


def weight_parameters(module: nn.Module) -> List[nn.Parameter]:
    """Every trainable parameter of ``module`` that is not an architecture weight."""
    return [p for n, p in module.named_parameters() if p.requires_grad and not is_arch_parameter(n)]


class SearchCell(nn.Module):
    """A cell of the continuous relaxation (docs/METHOD.md section 5).

    Node i sums mixed edges from all 2 + i earlier states. Each edge is a bottleneck
    (bias-free 1x1 conv to the op width, mixed op, bias-free 1x1 conv back to the node width).
    The output concatenates the intermediate nodes.

    Args:
        in_channels: channels of (s0, s1); an input narrower or wider than ``node_channels`` is
            pre-processed (1x1 conv, GN, ReLU) first, which lets towers stack search cells.
        node_channels: C_node, width of node states (the FPN width, 256).
        op_channels: C, width of the mixed ops (96 in the paper).
        num_nodes: intermediate nodes (3 in FAD).
        dil3: the 12-candidate space.
        share: use representation sharing; ``False`` builds the plain DARTS mixed op.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        node_channels: int,
        op_channels: int,
        num_nodes: int,
        dil3: bool = False,
        share: bool = True,
    ):
        super().__init__()
        self.preprocess = nn.ModuleList(preprocess(c, node_channels) for c in in_channels)
        mixed_op = RepShareMixedOp if share else MixedOp
        self.dag = nn.ModuleList(
            nn.ModuleList(
                bottleneck(
                    mixed_op(channels=op_channels, dil3=dil3),
                    node_channels=node_channels,
                    op_channels=op_channels,
                    bias=False,
                )
                for _ in range(2 + i)
            )
            for i in range(num_nodes)
        )

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, weights: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """
        Args:
            s0, s1: (N, C_in, H, W) cell inputs.
            weights: per node i, softmaxed alphas of shape (2 + i, num_ops).

        Returns:
            (N, num_nodes * C_node, H, W).
        """
        states = [self.preprocess[0](s0), self.preprocess[1](s1)]
        for edges, w in zip(self.dag, weights):
            states.append(
                sum_edges(post(op(pre(s), wj)) for (pre, op, post), s, wj in zip(edges, states, w))
            )
        return torch.cat(states[2:], dim=1)


class SearchTower(Tower):
    """A searched tower: ``num_cells`` search cells sharing one set of architecture weights.

    The tower owns its alphas (``self.alphas``, one (2 + i, num_ops) parameter per node,
    initialised 1e-3 * N(0, 1) as in DARTS), so a tower is searched and derived on its own.

    Args:
        in_channels: channels of the tower inputs (the FPN width).
        op_channels: C, width of the candidate ops (96; 128 for the X-101 model).
        node_channels: C_node; defaults to ``in_channels``.
        num_cells: cells in the tower (1 during the search in the paper).
        num_nodes: intermediate nodes per cell (3).
        dil3: search the 12-candidate space with dilation-3 variants.
        share: use representation sharing (the FAD op); ``False`` for the plain DARTS ablation.
        grouped_edges: run the cells' edges by groups, as grouped convs
            (:mod:`fad.nas.grouped_cell`): the same function and parameters with fewer ops, for
            GPUs, where ops are kernel launches. ``None`` (default): on the GPU's
            code path only (:func:`fad.nas.ops.on_cuda_path`), since on CPUs grouped convs run
            slower than the edges' own. Sharing cells only: the plain DARTS mixed ops always run
            edge by edge.
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
        grouped_edges: Optional[bool] = None,
    ):
        super().__init__()
        if not (grouped_edges is None or isinstance(grouped_edges, bool)):
            raise ValueError(f"grouped_edges must be None, True or False, got {grouped_edges!r}")
        node_channels = node_channels or in_channels
        self.dil3 = dil3
        self.grouped_edges = grouped_edges if share else False
        self.num_nodes = num_nodes
        self.op_channels = op_channels
        num_ops = len(primitives(dil3=dil3))
        self.alphas = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(2 + i, num_ops)) for i in range(num_nodes)
        )
        self._build_cells(
            lambda c: SearchCell(
                in_channels=c,
                node_channels=node_channels,
                op_channels=op_channels,
                num_nodes=num_nodes,
                dil3=dil3,
                share=share,
            ),
            in_channels=in_channels,
            node_channels=node_channels,
            num_cells=num_cells,
            num_nodes=num_nodes,
        )

    def forward_levels(
        self, s0s: Sequence[torch.Tensor], s1s: Optional[Sequence[torch.Tensor]] = None
    ) -> List[torch.Tensor]:
        """The tower on each level (see :meth:`Tower.forward`).

        The alphas are softmaxed, and with grouped edges the cells' parameters stacked, once for
        all levels.
        """
        weights = [a.softmax(dim=-1) for a in self.alphas]
        grouped = self.grouped_edges
        if grouped is None:
            grouped = on_cuda_path(s0s[0])
        if not grouped:
            return self._run_levels(s0s, s1s, lambda cell, a, b: cell(a, b, weights))
        prepared = {cell: prepare_cell(cell, weights) for cell in self.cells}
        return self._run_levels(
            s0s, s1s, lambda cell, a, b: grouped_cell_forward(cell, a, b, prepared[cell])
        )

    def expected_cost(self, op_costs: torch.Tensor) -> torch.Tensor:
        """The tower's cost under its architecture weights, differentiable with respect to them.

        An edge's expected cost is ``sum_k softmax(alpha_e)_k * op_costs[k]``; the tower's is the
        sum over every edge of every cell (the cells share the alphas). The cost-aware search adds
        it, weighted, to the alpha step's loss, which moves weight onto cheaper candidates.

        Args:
            op_costs: (num_ops,) cost of each candidate, in alpha order, ``none`` last (0: it
                computes nothing). Any unit; the search uses costs divided by the largest one.

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
