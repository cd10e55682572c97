"""The grouped-edge forward of a search cell: its mixed edges batched into grouped convs.

Run edge by edge, a 3-node search cell is 9 mixed edges of some 60 small ops each, per FPN level
and per pass; on a GPU every op is a kernel launch, and the launches, not the arithmetic, set the
pace of a search step. This forward computes the same function with far fewer kernels
(counted by ``benchmarks/count_ops.py``; docs/BENCHMARKS.md):

- **Edge groups** (:func:`edge_groups`): the edges that leave s0 and s1 form one group (both
  inputs exist when the cell starts), the edges that leave each intermediate node another; for 3
  nodes, groups of 6, 2 and 1 edges. The E edges of a group are stacked along the channels,
  (N, E * C, H, W), node-major (the edges into node i are neighbours).
- **Grouped layers**: each conv of the E edges is one conv with E times the groups (depthwise
  convs stay depthwise); GroupNorm(32) of each edge is GroupNorm(32 * E) over the stack, which
  is the same because a GroupNorm group is a contiguous block of channels.
- **Joint chains**: the std and sinSep chains of a mixed op run their base layers apart, but the
  dil layers and 1x1 decouple convs of both chains run as one (both chains' channels stacked).
- **Folded candidate weights**: softmax weights are positive, so ``w * ReLU(GN(x))`` equals
  ``ReLU(GN(x))`` with GN's affine parameters times w, and ``w * conv(x, W) = conv(x, w * W)``:
  each candidate weight scales the parameters of the layer that makes the candidate, and the
  mixed op's weighted sum becomes a plain sum.
- **Node sums in the post convs**: a 1x1 conv over the stacked channels of a node's edges is
  the sum of their post convs, so the post convs of a group are one conv with one group per node.

The parameters stay those of the edge-by-edge cell, under the same names, so checkpoints keep
their layout: :func:`prepare_cell` stacks them and folds the candidate weights in once per tower
forward, for all FPN levels, and :func:`grouped_cell_forward` runs one level with the result.
Outputs and gradients equal the edge-by-edge cell's up to float rounding.
"""

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .mixed_op import RepShareMixedOp
from .ops import dilated_depthwise_conv2d

__all__ = ["EdgeGroup", "PreparedCell", "edge_groups", "grouped_cell_forward", "prepare_cell"]


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
    """The edge groups of a search cell, in the order they can run.

    Args:
        num_nodes: intermediate nodes of the cell.

    Returns:
        The edges leaving s0 and s1, then those leaving each node but the last.
    """
    first = EdgeGroup(sources=(0, 1), nodes=tuple(range(num_nodes)))
    rest = [
        EdgeGroup(sources=(k,), nodes=tuple(range(k - 1, num_nodes)))
        for k in range(2, 1 + num_nodes)
    ]
    return [first] + rest


class _Conv(NamedTuple):
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    groups: int
    padding: int
    dilation: int


class _Layer(NamedTuple):
    """A layer's convs, then GroupNorm (weight, bias, groups) and ReLU, at group width."""

    convs: Tuple[_Conv, ...]
    norm: Tuple[torch.Tensor, torch.Tensor, int]


class _Group(NamedTuple):
    """The stacked parameters of one edge group (see :func:`prepare_cell`)."""

    group: EdgeGroup
    pre: torch.Tensor  # (E * C, C_node, 1, 1): all edges, node-major
    pre_by_source: Tuple[torch.Tensor, ...]  # per source, (len(nodes) * C, C_node, 1, 1)
    base: Tuple[Tuple[_Layer, ...], ...]  # [chain][layer]: L1, L2, L3 (L3's candidate folded in)
    dil: Tuple[_Layer, ...]  # joint dil layers on L1 (dil, [dil3]) and on L2, candidates folded in
    decouple: Tuple[torch.Tensor, ...]  # joint decouple weights of L1 and L2, candidates folded in
    post: torch.Tensor  # (len(nodes) * C_node, len(sources) * C, 1, 1), one conv group per node


class PreparedCell(NamedTuple):
    """What :func:`grouped_cell_forward` needs of a cell, for one set of alphas and weights."""

    groups: Tuple[_Group, ...]


def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat``, without an op (and a copy) for a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _stack_layers(layers: Sequence[nn.Sequential], scale: Optional[torch.Tensor] = None) -> _Layer:
    """One grouped layer from the same layer (a ``ConvLayer``) of several edges.

    Args:
        layers: the edges' layers, in channel order.
        scale: (n * C,), one value per stacked channel, or ``None``: multiplies GroupNorm's
            weight and bias, which folds in the candidate weight of the layer's output (ReLU
            commutes with a positive factor).

    Returns:
        The stacked convs (groups times n) and GroupNorm (groups times n).
    """
    n = len(layers)
    *convs, norm, _ = layers[0]
    stacked = []
    for k, conv in enumerate(convs):
        stacked.append(
            _Conv(
                weight=_cat([layer[k].weight for layer in layers]),
                bias=None if conv.bias is None else _cat([layer[k].bias for layer in layers]),
                groups=conv.groups * n,
                padding=conv.padding[0],
                dilation=conv.dilation[0],
            )
        )
    gamma = _cat([layer[-2].weight for layer in layers])
    beta = _cat([layer[-2].bias for layer in layers])
    if scale is not None:
        gamma, beta = gamma * scale, beta * scale
    return _Layer(convs=tuple(stacked), norm=(gamma, beta, norm.num_groups * n))


def _run_layer(x: torch.Tensor, layer: _Layer) -> torch.Tensor:
    for conv in layer.convs:
        if conv.dilation == 1:
            x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, groups=conv.groups)
        else:
            x = dilated_depthwise_conv2d(x, conv.weight, conv.bias, dilation=conv.dilation)
    gamma, beta, groups = layer.norm
    return F.relu_(F.group_norm(x, groups, gamma, beta))


def _candidate_scales(
    weights: Sequence[torch.Tensor], group: EdgeGroup, *, num_slots: int, channels: int
) -> torch.Tensor:
    """Per stacked channel of the joint chains, the weight of each candidate slot.

    Returns:
        (2 * E * C, num_slots): row (chain, edge, channel), column the chain's candidate in
        alpha order (base, base+dil, [base+dil3], base_x2, base_x2+dil, base_x3).
    """
    rows = torch.stack([weights[i][j] for i, j in group.edges])  # (E, num_ops)
    e = rows.shape[0]
    per_chain = rows[:, : 2 * num_slots].view(e, 2, num_slots).transpose(0, 1)  # (2, E, S)
    return per_chain[:, :, None, :].expand(2, e, channels, num_slots).reshape(-1, num_slots)


def _prepare_group(cell: nn.Module, group: EdgeGroup, weights: Sequence[torch.Tensor]) -> _Group:
    edges = [cell.dag[i][j] for i, j in group.edges]
    ops = [op for _, op, _ in edges]
    if not all(isinstance(op, RepShareMixedOp) for op in ops):
        raise TypeError("grouped edges need representation-sharing mixed ops (share=True)")
    chains = [[op.chains[b] for op in ops] for b in range(2)]  # [chain][edge]
    first = chains[0][0]
    num_slots = first.num_candidates
    ec = len(edges) * first.layers[0][-2].num_channels
    scales = _candidate_scales(weights, group, num_slots=num_slots, channels=ec // len(edges))
    dil3 = first.dil3 is not None
    slot = {"dil": 1, "dil3": 2, "dec2": 2 + dil3, "dil2": 3 + dil3, "x3": 4 + dil3}
    base = tuple(
        tuple(
            _stack_layers(
                [chain.layers[k] for chain in chains[b]],
                scales[b * ec : (b + 1) * ec, slot["x3"]] if k == 2 else None,
            )
            for k in range(3)
        )
        for b in range(2)
    )
    both = chains[0] + chains[1]  # the joint layers' channel order: chain, then edge
    dil_on = [("dil", lambda c: c.dil[0])] + ([("dil3", lambda c: c.dil3)] if dil3 else [])
    dil_on.append(("dil2", lambda c: c.dil[1]))
    dil = tuple(_stack_layers([get(c) for c in both], scales[:, slot[s]]) for s, get in dil_on)
    decouple = tuple(
        _cat([c.decouple[k].weight for c in both]) * scales[:, s, None, None, None]
        for k, s in enumerate((0, slot["dec2"]))
    )
    pre = {(i, j): cell.dag[i][j][0].weight for i, j in group.edges}
    post = [_cat([cell.dag[i][j][2].weight for j in group.sources], dim=1) for i in group.nodes]
    return _Group(
        group=group,
        pre=_cat([pre[e] for e in group.edges]),
        pre_by_source=tuple(_cat([pre[i, j] for i in group.nodes]) for j in group.sources)
        if len(group.sources) > 1
        else (),
        base=base,
        dil=dil,
        decouple=decouple,
        post=_cat(post),
    )


def prepare_cell(cell: nn.Module, weights: Sequence[torch.Tensor]) -> PreparedCell:
    """Stack a search cell's edge parameters into grouped ones and fold in the candidate weights.

    Run once per tower forward: the result serves every FPN level, so the stacking costs one op
    per tensor and pass, not one per level.

    Args:
        cell: a :class:`fad.nas.search_cells.SearchCell` with representation-sharing mixed ops.
        weights: per node i, softmaxed alphas of shape (2 + i, num_ops).

    Returns:
        The cell's grouped parameters, differentiable with respect to its parameters and alphas.
    """
    return PreparedCell(
        groups=tuple(_prepare_group(cell, g, weights) for g in edge_groups(len(cell.dag)))
    )


def _group_input(states: Sequence[torch.Tensor], g: _Group) -> torch.Tensor:
    """The pre 1x1 convs of a group's edges: (N, E * C, H, W), node-major."""
    sources = [states[j] for j in g.group.sources]
    if all(s is sources[0] for s in sources):
        return F.conv2d(sources[0], g.pre)
    ys = [F.conv2d(s, w) for s, w in zip(sources, g.pre_by_source)]
    n, _, h, w = ys[0].shape
    nodes = len(g.group.nodes)
    # (N, nodes, C, H, W) per source -> (N, nodes, sources, C, H, W): node-major.
    return torch.stack([y.view(n, nodes, -1, h, w) for y in ys], dim=2).view(n, -1, h, w)


def _mixed_ops(x: torch.Tensor, g: _Group) -> torch.Tensor:
    """All mixed ops of a group: (N, E * C, H, W) -> their weighted sums, (N, E * C, H, W)."""
    groups = 2 * len(g.group.edges)
    l1 = [_run_layer(x, chain[0]) for chain in g.base]
    joint = torch.cat(l1, dim=1)
    out = F.conv2d(joint, g.decouple[0], groups=groups)
    for dil in g.dil[:-1]:
        out = out + _run_layer(joint, dil)
    l2 = [_run_layer(y, chain[1]) for y, chain in zip(l1, g.base)]
    joint = torch.cat(l2, dim=1)
    out = out + F.conv2d(joint, g.decouple[1], groups=groups) + _run_layer(joint, g.dil[-1])
    # The two chains' halves of the joint sum: (N, 2, E * C, H, W) summed over the chains (a sum
    # whose backward is a view, where two channel slices would each need a zero-filled copy).
    out = out.unflatten(1, (2, -1)).sum(1)
    return out + _run_layer(l2[0], g.base[0][2]) + _run_layer(l2[1], g.base[1][2])


def grouped_cell_forward(
    cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor, prepared: PreparedCell
) -> torch.Tensor:
    """The search cell's forward on one level, its edges run by groups.

    Args:
        cell: the cell ``prepared`` was made from.
        s0, s1: (N, C_in, H, W) cell inputs.
        prepared: :func:`prepare_cell` of the cell.

    Returns:
        (N, num_nodes * C_node, H, W), as ``cell(s0, s1, weights)``.
    """
    states = [cell.preprocess[0](s0), cell.preprocess[1](s1)]
    c_node = states[0].shape[1]
    pending = None  # partial sums of the nodes not yet complete, stacked along the channels
    for g in prepared.groups:
        y = F.conv2d(_mixed_ops(_group_input(states, g), g), g.post, groups=len(g.group.nodes))
        pending = y if pending is None else pending + y
        if pending.shape[1] == c_node:
            states.append(pending)
        else:
            # split, not two slices: its backward is one cat, theirs two zero-filled copies.
            node, pending = pending.split([c_node, pending.shape[1] - c_node], dim=1)
            states.append(node)
    return torch.cat(states[2:], dim=1)
