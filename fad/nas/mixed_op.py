"""Mixed ops of a search edge: the representation-sharing op of FAD and the plain DARTS one.

Both take the input and a vector of softmaxed architecture weights, one per candidate of
:func:`fad.genotypes.primitives` (``none`` last), and return ``sum_i w_i * candidate_i(x)``.

A search cell runs the mixed ops of several edges at once, their inputs stacked along the
channels, ``(N, E * C, H, W)`` (:meth:`RepShareMixedOp.stacked`): on a GPU every op is a kernel
launch, and the launches, not the arithmetic, set the pace of a search step. The sharing op's one
forward is this stacked form (one edge is a stack of one):

- **Grouped layers**: each conv of the E edges is one conv with E times the groups (depthwise
  convs stay depthwise); GroupNorm(32) of each edge is GroupNorm(32 * E) over the stack, which
  is the same because a GroupNorm group is a contiguous block of channels.
- **Joint chains**: the std and sinSep chains run their base layers apart, but the dil layers
  and 1x1 decouple convs of both chains run as one (both chains' channels stacked).
- **Folded candidate weights**: softmax weights are positive, so ``w * ReLU(GN(x))`` equals
  ``ReLU(GN(x))`` with GN's affine parameters times w, and ``w * conv(x, W) = conv(x, w * W)``:
  each candidate weight scales the parameters of the layer that makes the candidate, and the
  weighted sum becomes a plain sum.

The parameters stay the modules' own, under the same names, so checkpoints keep their layout;
the stacking runs once per tower forward, for all FPN levels.
"""

import functools
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import BASE_TYPES, NONE, op_layers, primitives

from .cell_base import sum_edges
from .ops import ConvLayer, build_op, dilated_depthwise_conv2d

__all__ = ["MixedOp", "RepShareMixedOp", "SharedChain"]

#: Runs stacked mixed ops: (N, E * C, H, W) -> (N, E * C, H, W).
StackedOps = Callable[[torch.Tensor], torch.Tensor]


def _producer(layers: Sequence[str]) -> Tuple[str, int]:
    """Which submodule of a :class:`SharedChain` makes the candidate of a layer stack, and which
    chain layer's output (1 to 3) it reads: docs/METHOD.md section 3's table, by name."""
    depth = layers.count(layers[0])  # the base layers: the candidate reads L_depth
    if depth == len(layers):
        return ("layers.2", 2) if depth == 3 else (f"decouple.{depth - 1}", depth)
    return ("dil3" if layers[-1] == "dil3" else f"dil.{depth - 1}"), depth


class SharedChain(nn.Module):
    """The shared computation of one base type (docs/METHOD.md section 3).

    One chain L1 -> L2 -> L3 of base layers plus ``dil`` layers on L1 and L2 (and a ``dil3``
    layer on L1 in the 12-op space) yields all candidates of the base type:

    ============  ==================================
    candidate     computed as
    ============  ==================================
    base          1x1 "decouple" conv (no bias) of L1
    base+dil      dil(L1)
    base+dil3     dil3(L1)  (optional)
    base_x2       1x1 decouple conv (no bias) of L2
    base_x2+dil   dil(L2)
    base_x3       L3
    ============  ==================================

    The decouple convs let one shared activation serve as two separate candidates (paper
    section 3.2). Sharing runs 3 base layers where separate ops would run 9.

    Args:
        base: ``"std"`` or ``"sinSep"``.
        channels: op width C.
        dil3: also produce the dilation-3 candidate.

    Attributes:
        candidates: per candidate of the base type, (index in the alpha vector, name of the
            submodule that makes it, the chain layer it reads), in the order of
            :func:`fad.genotypes.primitives`.
    """

    def __init__(self, *, base: str, channels: int, dil3: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(ConvLayer(kind=base, channels=channels) for _ in range(3))
        self.dil = nn.ModuleList(ConvLayer(kind="dil", channels=channels) for _ in range(2))
        self.dil3 = ConvLayer(kind="dil3", channels=channels) if dil3 else None
        self.decouple = nn.ModuleList(
            nn.Conv2d(channels, channels, 1, bias=False) for _ in range(2)
        )
        names = primitives(dil3=dil3)
        self.candidates: List[Tuple[int, str, int]] = [
            (k, *_producer(op_layers(n)))
            for k, n in enumerate(names)
            if n != NONE and op_layers(n)[0] == base
        ]


class _Conv(NamedTuple):
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    groups: int
    padding: int
    dilation: int
    direct: Optional[bool]


class _Layer(NamedTuple):
    """Stacked convs, then GroupNorm (weight, bias, groups) and ReLU, or no norm (decouple)."""

    convs: Tuple[_Conv, ...]
    norm: Optional[Tuple[torch.Tensor, torch.Tensor, int]]


def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat``, without an op (and a copy) for a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _stack(modules: Sequence[nn.Module], scale: Optional[torch.Tensor] = None) -> _Layer:
    """One grouped layer from the same :class:`ConvLayer` (or 1x1 conv) of n stacked ops.

    Args:
        modules: the ops' layers, in channel order.
        scale: (n * C,) candidate weight per stacked channel, or ``None``: folded into
            GroupNorm's affine parameters (ReLU commutes with a positive factor), or into the
            kernel of a 1x1 conv.
    """
    n, layer = len(modules), isinstance(modules[0], ConvLayer)
    per_module = [m.convs if layer else [m] for m in modules]
    convs = []
    for k, conv in enumerate(per_module[0]):
        weight = _cat([m[k].weight for m in per_module])
        if scale is not None and not layer:
            weight = weight * scale[:, None, None, None]
        convs.append(
            _Conv(
                weight=weight,
                bias=None if conv.bias is None else _cat([m[k].bias for m in per_module]),
                groups=conv.groups * n,
                padding=conv.padding[0],
                dilation=conv.dilation[0],
                direct=getattr(conv, "direct", None),  # DilatedDepthwiseConv's
            )
        )
    if not layer:
        return _Layer(convs=tuple(convs), norm=None)
    gamma = _cat([m.norm.weight for m in modules])
    beta = _cat([m.norm.bias for m in modules])
    if scale is not None:
        gamma, beta = gamma * scale, beta * scale
    return _Layer(convs=tuple(convs), norm=(gamma, beta, modules[0].norm.num_groups * n))


def _run(x: torch.Tensor, layer: _Layer) -> torch.Tensor:
    for c in layer.convs:
        if c.dilation == 1:
            x = F.conv2d(x, c.weight, c.bias, padding=c.padding, groups=c.groups)
        else:
            x = dilated_depthwise_conv2d(x, c.weight, c.bias, dilation=c.dilation, direct=c.direct)
    if layer.norm is None:
        return x
    gamma, beta, groups = layer.norm
    return F.relu_(F.group_norm(x, groups, gamma, beta))


class _Chains(NamedTuple):
    """E sharing ops, stacked (:meth:`RepShareMixedOp.stacked`); index k is chain layer k + 1."""

    base: Tuple[Tuple[_Layer, ...], ...]  # [chain][k]: the layers that candidates read
    joint: Tuple[Tuple[_Layer, ...], ...]  # [k]: both chains' candidates that read L(k + 1), as one
    own: Tuple[Tuple[Tuple[_Layer, ...], ...], ...]  # [k]: per chain, its base layer (L3)


def _run_chains(chains: _Chains, x: torch.Tensor) -> torch.Tensor:
    outs, own, ls = [], [], [x] * len(chains.base)
    for k, joint in enumerate(chains.joint):
        ls = [_run(y, base[k]) for y, base in zip(ls, chains.base)]
        both = torch.cat(ls, dim=1)
        outs += [_run(both, layer) for layer in joint]
        own += [_run(y, layer) for layers in chains.own[k] for y, layer in zip(ls, layers)]
    # The chains' halves of the joint sum: (N, 2, E * C, H, W) summed over the chains (a sum
    # whose backward is a view, where two channel slices would each need a zero-filled copy).
    return sum_edges([sum_edges(outs).unflatten(1, (len(ls), -1)).sum(1)] + own)


class RepShareMixedOp(nn.Module):
    """FAD's representation-sharing mixed op: all candidates from one chain per base type.

    Args:
        channels: op width C.
        dil3: use the 12-candidate space with dilation-3 variants.

    ``none`` contributes nothing and costs nothing: its weight is simply not read.
    """

    def __init__(self, *, channels: int, dil3: bool = False):
        super().__init__()
        self.chains = nn.ModuleList(
            SharedChain(base=b, channels=channels, dil3=dil3) for b in BASE_TYPES
        )
        self.primitives: Sequence[str] = primitives(dil3=dil3)
        # (chains, slots): the alpha index of each chain's candidates, slot by slot (the chains
        # make their candidates alike); not in the state dict.
        slots = [[k for k, _, _ in chain.candidates] for chain in self.chains]
        self.register_buffer("slot_index", torch.tensor(slots), persistent=False)

    @staticmethod
    def stacked(ops: Sequence["RepShareMixedOp"], weights: torch.Tensor) -> StackedOps:
        """The mixed ops of E edges as one: their layers grouped, their weights folded in.

        Args:
            ops: the E edges' mixed ops, in channel order.
            weights: (E, len(primitives)) each edge's softmaxed architecture weights.

        Returns:
            A function of the stacked inputs (N, E * C, H, W) that returns the stacked weighted
            sums (N, E * C, H, W), differentiable with respect to the ops' parameters and the
            weights. Made once, it serves every FPN level.
        """
        chains = [[op.chains[b] for op in ops] for b in range(len(BASE_TYPES))]  # [chain][edge]
        index = ops[0].slot_index
        (nb, num_slots), e = index.shape, len(ops)
        c = ops[0].chains[0].decouple[0].weight.shape[0]
        # (E, chains, slots) -> a row per stacked channel (chain, edge, channel), a column per slot.
        scales = weights.index_select(1, index.flatten()).view(e, nb, num_slots).transpose(0, 1)
        scales = scales[:, :, None].expand(nb, e, c, num_slots).reshape(nb * e * c, num_slots)
        depths = range(2)  # the chain layers candidates read: L1 and L2
        base = tuple(
            tuple(_stack([ch.layers[k] for ch in edges]) for k in depths) for edges in chains
        )
        joint: List[List[_Layer]] = [[] for _ in depths]
        own: List[List[Tuple[_Layer, ...]]] = [[] for _ in depths]
        for s, (_, name, reads) in enumerate(chains[0][0].candidates):
            if name.startswith("layers."):  # a base layer: each chain its own kind
                own[reads - 1].append(
                    tuple(
                        _stack(
                            [ch.get_submodule(name) for ch in edges],
                            scales[b * e * c : (b + 1) * e * c, s],
                        )
                        for b, edges in enumerate(chains)
                    )
                )
            else:
                layers = [ch.get_submodule(name) for edges in chains for ch in edges]
                joint[reads - 1].append(_stack(layers, scales[:, s]))
        stacked = _Chains(base=base, joint=tuple(map(tuple, joint)), own=tuple(map(tuple, own)))
        return functools.partial(_run_chains, stacked)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) input.
            weights: (len(primitives),) softmaxed architecture weights, ``none`` last.

        Returns:
            (N, C, H, W) weighted sum of the candidates.
        """
        return self.stacked([self], weights[None])(x)


def _run_edges(ops: Sequence["MixedOp"], weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    xs = x.chunk(len(ops), dim=1)
    return _cat([op(xe, w) for op, xe, w in zip(ops, xs, weights)], dim=1)


class MixedOp(nn.Module):
    """The plain DARTS mixed op: every candidate a separate op, no sharing.

    The reference the sharing op is measured against (``benchmarks/bench_mixed_op.py``), and a
    search option for the paper's ablation of representation sharing.

    Args:
        channels: op width C.
        dil3: use the 12-candidate space with dilation-3 variants.
    """

    def __init__(self, *, channels: int, dil3: bool = False):
        super().__init__()
        self.primitives: Sequence[str] = primitives(dil3=dil3)
        self.ops = nn.ModuleList(
            build_op(name, channels=channels) for name in self.primitives if name != NONE
        )

    @staticmethod
    def stacked(ops: Sequence["MixedOp"], weights: torch.Tensor) -> StackedOps:
        """As :meth:`RepShareMixedOp.stacked`; the candidates of plain ops share nothing, so
        each edge runs on its slice of the stacked channels."""
        return functools.partial(_run_edges, ops, weights)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Same contract as :meth:`RepShareMixedOp.forward`."""
        w: List[torch.Tensor] = list(weights.to(x.dtype).unbind(0))
        out = self.ops[0](x) * w[0]
        for op, wi in zip(self.ops[1:], w[1:]):
            out = torch.addcmul(out, op(x), wi)
        return out
