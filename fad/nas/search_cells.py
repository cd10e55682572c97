"""Search cell and search tower: every edge a mixed op, weighted by the tower's alphas.

Run edge by edge, a 3-node search cell is 9 mixed edges of some 60 small ops each, per FPN level
and per pass; on a GPU every op is a kernel launch, and the launches set the pace of a search
step. So a cell runs its edges by groups (:func:`edge_groups`), each group's mixed ops stacked
along the channels as one (:meth:`fad.nas.mixed_op.RepShareMixedOp.stacked`), its pre 1x1
convs as one conv and its post 1x1 convs as one grouped conv per node, which also sums each
node's edges. That is its one forward, on every device (docs/BENCHMARKS.md measures it against
edge by edge, whose form is the test reference in ``tests/nas/edgewise.py``).

A search tower keeps its architecture weights in the parameter list ``alphas``, so a model's
parameter names tell them from the weights: :func:`arch_parameters` and
:func:`weight_parameters` (pt.darts' ``alphas()`` / ``weights()`` split, by name) are the one
place that does, for any module that holds search towers.
"""

from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import Genotype, derive_genotype, primitives

from .cell_base import Tower, bottleneck, preprocess
from .mixed_op import MixedOp, RepShareMixedOp

__all__ = [
    "EdgeGroup",
    "SearchCell",
    "SearchTower",
    "arch_parameters",
    "edge_groups",
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


class EdgeGroup(NamedTuple):
    """Edges of a search cell that read the same states and run as one.

    ``sources`` are state indices (0: s0, 1: s1, k >= 2: node k - 2), ``nodes`` the nodes the
    edges write, consecutive up to the last node.
    """

    sources: Tuple[int, ...]
    nodes: Tuple[int, ...]

    @property
    def edges(self) -> List[Tuple[int, int]]:
        """(node, source) of each edge, in channel order: node-major, sources inside."""
        return [(i, j) for i in self.nodes for j in self.sources]


def edge_groups(num_nodes: int) -> List[EdgeGroup]:
    """The edge groups of a search cell, in the order they can run: the edges that leave s0 and
    s1 (both exist when the cell starts), then those that leave each node but the last; for 3
    nodes, groups of 6, 2 and 1 edges."""
    first = EdgeGroup(sources=(0, 1), nodes=tuple(range(num_nodes)))
    rest = [
        EdgeGroup(sources=(k,), nodes=tuple(range(k - 1, num_nodes)))
        for k in range(2, 1 + num_nodes)
    ]
    return [first] + rest


class _Group(NamedTuple):
    """One edge group's stacked parameters (see :meth:`SearchCell.prepare`)."""

    group: EdgeGroup
    pre: Tuple[torch.Tensor, ...]  # all edges' (E * C, C_node, 1, 1), node-major; then per source
    ops: Callable[[torch.Tensor], torch.Tensor]  # the stacked mixed ops
    post: torch.Tensor  # (len(nodes) * C_node, len(sources) * C, 1, 1), one conv group per node


def _group_input(states: Sequence[torch.Tensor], g: _Group) -> torch.Tensor:
    """The pre 1x1 convs of a group's edges: (N, E * C, H, W), node-major."""
    sources = [states[j] for j in g.group.sources]
    if all(s is sources[0] for s in sources):  # one input for all (the box tower's s0, s1)
        return F.conv2d(sources[0], g.pre[0])
    ys = [F.conv2d(s, w) for s, w in zip(sources, g.pre[1:])]
    n, _, h, w = ys[0].shape
    nodes = len(g.group.nodes)
    # (N, nodes, C, H, W) per source -> (N, nodes, sources, C, H, W): node-major.
    return torch.stack([y.view(n, nodes, -1, h, w) for y in ys], dim=2).view(n, -1, h, w)


class SearchCell(nn.Module):
    """A cell of the continuous relaxation (docs/METHOD.md section 5).

    Node i sums mixed edges from all 2 + i earlier states. Each edge is a bottleneck
    (bias-free 1x1 conv to the op width, mixed op, bias-free 1x1 conv back to the node width).
    The output concatenates the intermediate nodes. The edges run by groups (see the module's
    docstring): :meth:`prepare` stacks their parameters, :meth:`forward` runs one level.

    Args:
        in_channels: channels of (s0, s1); an input narrower or wider than ``node_channels`` is
            pre-processed (1x1 conv, GN, ReLU) first, which lets towers stack search cells.
        node_channels: C_node, width of node states (the FPN width, 256).
        op_channels: C, width of the mixed ops (96 in the paper).
        num_nodes: intermediate nodes (3 in FAD).
        dil3: the 12-candidate space.
        share: use representation sharing; ``False`` builds the plain DARTS mixed op, whose
            candidates share nothing to stack: its edges run each on its own slice of a group.
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
        self.mixed_op = RepShareMixedOp if share else MixedOp
        self.dag = nn.ModuleList(
            nn.ModuleList(
                bottleneck(
                    self.mixed_op(channels=op_channels, dil3=dil3),
                    node_channels=node_channels,
                    op_channels=op_channels,
                    bias=False,
                )
                for _ in range(2 + i)
            )
            for i in range(num_nodes)
        )
        self.groups = edge_groups(num_nodes)

    def prepare(self, weights: Sequence[torch.Tensor]) -> List[_Group]:
        """Stack the edges' parameters by groups, the candidate weights folded in: once per
        tower forward, for every FPN level.

        Args:
            weights: per node i, softmaxed alphas of shape (2 + i, num_ops).

        Returns:
            What :meth:`forward` takes, differentiable with respect to the parameters and alphas.
        """
        prepared = []
        for g in self.groups:
            pre = {(i, j): self.dag[i][j][0].weight for i, j in g.edges}
            # Two sources: s0 and s1, which are one tensor in the box tower and two in the class
            # tower (one conv for all edges, or one per source).
            sources = g.sources if len(g.sources) > 1 else ()
            by_source = [torch.cat([pre[i, j] for i in g.nodes]) for j in sources]
            post = [torch.cat([self.dag[i][j][2].weight for j in g.sources], 1) for i in g.nodes]
            prepared.append(
                _Group(
                    group=g,
                    pre=(torch.cat([pre[e] for e in g.edges]), *by_source),
                    ops=self.mixed_op.stacked(
                        [self.dag[i][j][1] for i, j in g.edges],
                        torch.stack([weights[i][j] for i, j in g.edges]),
                    ),
                    post=torch.cat(post),
                )
            )
        return prepared

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, prepared: List[_Group]) -> torch.Tensor:
        """
        Args:
            s0, s1: (N, C_in, H, W) cell inputs.
            prepared: :meth:`prepare` of the tower's softmaxed alphas.

        Returns:
            (N, num_nodes * C_node, H, W).
        """
        states = [self.preprocess[0](s0), self.preprocess[1](s1)]
        c_node = states[0].shape[1]
        pending = None  # partial sums of the nodes not yet complete, stacked along the channels
        for g in prepared:
            x = _group_input(states, g)
            y = F.conv2d(g.ops(x), g.post, groups=len(g.group.nodes))
            pending = y if pending is None else pending + y
            if pending.shape[1] == c_node:
                states.append(pending)
            else:
                # split, not two slices: its backward is one cat, theirs two zero-filled copies.
                node, pending = pending.split([c_node, pending.shape[1] - c_node], dim=1)
                states.append(node)
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
        node_channels = node_channels or in_channels
        self.dil3 = dil3
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

        The alphas are softmaxed, and the cells' parameters stacked, once for all levels.
        """
        weights = [a.softmax(dim=-1) for a in self.alphas]
        prepared = {cell: cell.prepare(weights) for cell in self.cells}
        return self._run_levels(s0s, s1s, lambda cell, a, b: cell(a, b, prepared[cell]))

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
