"""Mixed ops of a search edge: FAD's representation-sharing op and the plain DARTS one.

Both return ``sum_i w_i * candidate_i(x)`` for softmaxed architecture weights w, one per
candidate of :func:`fad.genotypes.primitives` (``none`` last). A search cell runs the mixed ops
of E edges at once, their inputs stacked along the channels, (N, E * C, H, W) (``stacked``); the
sharing op's one forward is that form (docs/BENCHMARKS.md, "one search cell forward"):

- each conv of the E edges is one conv of E times the groups, and GroupNorm(32) of each edge is
  GroupNorm(32 * E) over the stack (a GroupNorm group is a contiguous block of channels);
- the dil layers and decouple convs of the std and sinSep chains run as one;
- softmax weights are positive, so ``w * ReLU(GN(x))`` is ReLU(GN(x)) with GN's affine
  parameters times w, and ``w * conv(x, W) = conv(x, w * W)``: the weighted sum is a plain sum.

The parameters stay the modules' own, under the same names, so checkpoints keep their layout.
"""

import functools
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import BASE_TYPES, NONE, op_layers, primitives

from .cell_base import sum_edges
from .ops import ConvLayer, build_op, dilated_depthwise_conv2d

__all__ = ["MixedOp", "RepShareMixedOp", "SharedChain"]

#: Stacked mixed ops: (N, E * C, H, W) -> (N, E * C, H, W).
StackedOps = Callable[[torch.Tensor], torch.Tensor]


class SharedChain(nn.Module):
    """The shared computation of one base type (docs/METHOD.md section 3).

    A chain L1 -> L2 -> L3 of base layers, ``dil`` layers on L1 and L2 (and ``dil3`` on L1 in
    the 12-op space) and 1x1 "decouple" convs (no bias) on L1 and L2 yield all candidates of the
    base type: base and base_x2 are the decouple convs of L1 and L2, base(_x2)+dil the dil
    layers, base_x3 is L3. The decouple convs let one activation serve two candidates (paper
    section 3.2).

    Args:
        base: ``"std"`` or ``"sinSep"``.
        channels: op width C.
        dil3: also produce the dilation-3 candidate.

    Attributes:
        candidates: per candidate of the base type, in alpha order: (its alpha index, the
            submodule that makes it, the chain layer it reads, 1 or 2).
    """

    def __init__(self, *, base: str, channels: int, dil3: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(ConvLayer(kind=base, channels=channels) for _ in range(3))
        self.dil = nn.ModuleList(ConvLayer(kind="dil", channels=channels) for _ in range(2))
        self.dil3 = ConvLayer(kind="dil3", channels=channels) if dil3 else None
        self.decouple = nn.ModuleList(
            nn.Conv2d(channels, channels, 1, bias=False) for _ in range(2)
        )
        self.candidates: List[Tuple[int, str, int]] = []
        for k, name in enumerate(primitives(dil3=dil3)):
            layers = [] if name == NONE else op_layers(name)
            if layers[:1] == [base]:
                depth = layers.count(base)  # the candidate reads L_depth (L3 is L2's candidate)
                if depth == len(layers):
                    producer = "layers.2" if depth == 3 else f"decouple.{depth - 1}"
                else:
                    producer = "dil3" if layers[-1] == "dil3" else f"dil.{depth - 1}"
                self.candidates.append((k, producer, min(depth, 2)))


def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat``, without an op (and a copy) for a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _stack(modules: Sequence[nn.Module], scale: Optional[torch.Tensor] = None) -> StackedOps:
    """One grouped layer from the same :class:`ConvLayer` (or 1x1 conv) of n stacked ops.

    Args:
        modules: the ops' layers, in channel order.
        scale: (n * C,) candidate weight per stacked channel, or ``None``: folded into
            GroupNorm's affine parameters, or into a 1x1 conv's kernel.
    """
    n, layer = len(modules), isinstance(modules[0], ConvLayer)
    convs = []
    for k, conv in enumerate(list(modules[0])[:-2] if layer else modules[:1]):
        parts = [m[k] if layer else m for m in modules]
        weight = _cat([p.weight for p in parts])
        if scale is not None and not layer:
            weight = weight * scale[:, None, None, None]
        bias = None if conv.bias is None else _cat([p.bias for p in parts])
        if conv.dilation[0] == 1:
            f, kw = F.conv2d, dict(padding=conv.padding[0], groups=conv.groups * n)
        else:  # a DilatedDepthwiseConv
            f, kw = dilated_depthwise_conv2d, dict(dilation=conv.dilation[0], direct=conv.direct)
        convs.append(functools.partial(f, weight=weight, bias=bias, **kw))
    if not layer:
        return convs[0]
    gamma = _cat([m[-2].weight for m in modules])
    beta = _cat([m[-2].bias for m in modules])
    if scale is not None:
        gamma, beta = gamma * scale, beta * scale
    groups = modules[0][-2].num_groups * n

    def run(x: torch.Tensor) -> torch.Tensor:
        for c in convs:
            x = c(x)
        return F.relu_(F.group_norm(x, groups, gamma, beta))

    return run


def _run_chains(base, candidates, x: torch.Tensor) -> torch.Tensor:
    """Stacked sharing ops: ``base[chain][k]`` makes chain layer k + 1 (L1, L2) of each chain,
    ``candidates[k]`` are (chain, f) of those that read it: f of both chains (chain ``None``)
    or of one (L3, whose kind differs between chains)."""
    outs, owns, ls = [], [], [x] * len(base)
    for k, cands in enumerate(candidates):
        ls = [layers[k](y) for y, layers in zip(ls, base)]
        both = torch.cat(ls, dim=1)
        outs += [f(both) for b, f in cands if b is None]
        owns += [f(ls[b]) for b, f in cands if b is not None]
    # The chains' halves of the joint sum, (N, 2, E * C, H, W) summed over the chains: a sum
    # whose backward is a view, where two channel slices would each need a zero-filled copy.
    return sum_edges([sum_edges(outs).unflatten(1, (len(ls), -1)).sum(1)] + owns)


class RepShareMixedOp(nn.Module):
    """FAD's representation-sharing mixed op: all candidates from one chain per base type;
    ``none`` costs nothing (its weight is not read).

    Args:
        channels: op width C.
        dil3: the 12-candidate space with dilation-3 variants.
    """

    def __init__(self, *, channels: int, dil3: bool = False):
        super().__init__()
        self.chains = nn.ModuleList(
            SharedChain(base=b, channels=channels, dil3=dil3) for b in BASE_TYPES
        )
        self.primitives: Sequence[str] = primitives(dil3=dil3)
        # (chains, slots): the alpha index of each chain's candidates (the chains make theirs
        # alike, slot by slot); not in the state dict.
        slots = [[k for k, _, _ in chain.candidates] for chain in self.chains]
        self.register_buffer("slot_index", torch.tensor(slots), persistent=False)

    @staticmethod
    def stacked(ops: Sequence["RepShareMixedOp"], weights: torch.Tensor) -> StackedOps:
        """The mixed ops of E edges as one: their layers grouped, their weights folded in.

        Args:
            ops: the E edges' mixed ops, in channel order.
            weights: (E, len(primitives)) each edge's softmaxed architecture weights.

        Returns:
            A function (N, E * C, H, W) -> (N, E * C, H, W) of the stacked inputs, the stacked
            weighted sums, differentiable in the parameters and weights; it serves every level.
        """
        chains = [[op.chains[b] for op in ops] for b in range(len(BASE_TYPES))]  # [chain][edge]
        (nb, num_slots), e = ops[0].slot_index.shape, len(ops)
        c = ops[0].chains[0].decouple[0].weight.shape[0]
        # (E, chains, slots) -> (chains, E * C, slots): a row per stacked channel of a chain.
        scales = weights.index_select(1, ops[0].slot_index.flatten()).view(e, nb, num_slots)
        scales = scales.transpose(0, 1)[:, :, None].expand(nb, e, c, num_slots)
        scales = scales.reshape(nb, e * c, num_slots)
        base = [[_stack([ch.layers[k] for ch in edges]) for k in range(2)] for edges in chains]
        candidates: List[List[Tuple[Optional[int], StackedOps]]] = [[], []]
        for s, (_, name, reads) in enumerate(chains[0][0].candidates):
            if name.startswith("layers."):  # L3: each chain its own kind
                for b, edges in enumerate(chains):
                    layers = [ch.get_submodule(name) for ch in edges]
                    candidates[reads - 1].append((b, _stack(layers, scales[b, :, s])))
            else:
                layers = [ch.get_submodule(name) for edges in chains for ch in edges]
                candidates[reads - 1].append((None, _stack(layers, scales[:, :, s].flatten())))
        return functools.partial(_run_chains, base, candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) input.
            weights: (len(primitives),) softmaxed architecture weights, ``none`` last.

        Returns:
            (N, C, H, W) weighted sum of the candidates.
        """
        return self.stacked([self], weights[None])(x)


class MixedOp(nn.Module):
    """The plain DARTS mixed op: every candidate a separate op (the paper's ablation of
    sharing, and the reference of ``benchmarks/bench_mixed_op.py``).

    Args:
        channels: op width C.
        dil3: the 12-candidate space with dilation-3 variants.
    """

    def __init__(self, *, channels: int, dil3: bool = False):
        super().__init__()
        self.primitives: Sequence[str] = primitives(dil3=dil3)
        self.ops = nn.ModuleList(
            build_op(name, channels=channels) for name in self.primitives if name != NONE
        )

    @staticmethod
    def stacked(ops: Sequence["MixedOp"], weights: torch.Tensor) -> StackedOps:
        """As :meth:`RepShareMixedOp.stacked`; plain candidates share nothing to stack, so each
        edge runs on its slice of the channels."""

        def run(x: torch.Tensor) -> torch.Tensor:
            xs = x.chunk(len(ops), dim=1)
            return _cat([op(xe, w) for op, xe, w in zip(ops, xs, weights)], dim=1)

        return run

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """As :meth:`RepShareMixedOp.forward`."""
        w: List[torch.Tensor] = list(weights.to(x.dtype).unbind(0))
        out = self.ops[0](x) * w[0]
        for op, wi in zip(self.ops[1:], w[1:]):
            out = torch.addcmul(out, op(x), wi)
        return out
