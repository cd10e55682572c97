"""Mixed ops of a search edge, ``sum_i w_i * candidate_i(x)`` (w: softmaxed alphas, ``none``
last): FAD's sharing op and the plain DARTS one.

``stacked`` runs E edges' mixed ops at once (docs/BENCHMARKS.md): each conv of the E edges is one
conv of E times the groups, GN(32) of each edge GN(32 * E); both chains' dil layers and decouple
convs run as one; positive softmax weights fold into GN's affine parameters (as
``w * ReLU(y) = ReLU(w * y)``) or 1x1 kernels, making the weighted sum a plain sum."""

import functools
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fad.genotypes import BASE_TYPES, NONE, op_layers, primitives

from .cell_base import sum_edges
from .ops import ConvLayer, build_op, dilated_depthwise_conv2d

__all__ = ["MixedOp", "RepShareMixedOp", "SharedChain"]

#: Stacked mixed ops: (N, E * C, H, W) -> (N, E * C, H, W).
StackedOps = Callable[[Tensor], Tensor]


class SharedChain(nn.Module):
    """One base type's candidates (docs/METHOD.md section 3): base layers L1 -> L2 -> L3,
    ``dil`` layers on L1 and L2 (``dil3`` on L1), bias-free 1x1 "decouple" convs on L1 and L2.

    Args:
        base: ``"std"`` or ``"sinSep"``.
        channels: op width C.
        dil3: also make the dilation-3 candidate.

    Attributes:
        candidates: per candidate of the base type, in alpha order: (its alpha index, the
            submodule that makes it, the chain layer it reads, 1 or 2).
    """

    def __init__(self, *, base: str, channels: int, dil3: bool = False):
        super().__init__()
        c = channels
        self.layers = nn.ModuleList(ConvLayer(kind=base, channels=c) for _ in range(3))
        self.dil = nn.ModuleList(ConvLayer(kind="dil", channels=c) for _ in range(2))
        self.dil3 = ConvLayer(kind="dil3", channels=c) if dil3 else None
        self.decouple = nn.ModuleList(nn.Conv2d(c, c, 1, bias=False) for _ in range(2))
        self.candidates: List[Tuple[int, str, int]] = []
        for k, name in enumerate(primitives(dil3=dil3)):
            layers = [] if name == NONE else op_layers(name)
            if layers[:1] == [base]:
                depth = layers.count(base)  # it reads L_depth (base_x3 is L3: it reads L2)
                if depth == len(layers):
                    producer = "layers.2" if depth == 3 else f"decouple.{depth - 1}"
                else:
                    producer = "dil3" if layers[-1] == "dil3" else f"dil.{depth - 1}"
                self.candidates.append((k, producer, min(depth, 2)))


def _cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """``torch.cat``, without an op (and a copy) for a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _stack(modules: Sequence[nn.Module], scale: Optional[Tensor] = None) -> StackedOps:
    """One grouped layer from the same :class:`ConvLayer` (or 1x1 conv) of n stacked ops.

    Args:
        modules: the ops' layers, in channel order.
        scale: (n * C,) candidate weight per stacked channel, folded into GroupNorm's affine
            parameters or the 1x1 kernel; ``None``: no weight.
    """
    n, layer = len(modules), isinstance(modules[0], ConvLayer)
    parts = [list(m)[:-2] if layer else [m] for m in modules]  # the convs of each
    convs = []
    for k, conv in enumerate(parts[0]):
        weight = _cat([p[k].weight for p in parts])
        if scale is not None and not layer:
            weight = weight * scale[:, None, None, None]
        bias = None if conv.bias is None else _cat([p[k].bias for p in parts])
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

    def run(x: Tensor) -> Tensor:
        for c in convs:
            x = c(x)
        return F.relu_(F.group_norm(x, groups, gamma, beta))

    return run


class RepShareMixedOp(nn.Module):
    """FAD's representation-sharing mixed op, one chain per base type (``none`` costs nothing):
    x, (N, C, H, W), and weights, (len(primitives),) softmaxed alphas -> (N, C, H, W).

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
        # (chains, slots): the alpha index of each chain's candidates, made alike slot by slot.
        slots = [[k for k, _, _ in chain.candidates] for chain in self.chains]
        self.register_buffer("slot_index", torch.tensor(slots), persistent=False)

    @staticmethod
    def stacked(ops: Sequence["RepShareMixedOp"], weights: Tensor) -> StackedOps:
        """E edges' mixed ops as one, differentiable in their parameters and weights.

        Args:
            ops: the E edges' mixed ops, in channel order.
            weights: (E, len(primitives)) each edge's softmaxed architecture weights.

        Returns:
            The stacked ops, (N, E * C, H, W) -> (N, E * C, H, W), for every level.
        """
        chains = [[op.chains[b] for op in ops] for b in range(len(BASE_TYPES))]  # [chain][edge]
        (nb, num_slots), e = ops[0].slot_index.shape, len(ops)
        c = ops[0].chains[0].decouple[0].weight.shape[0]
        # (E, chains, slots) -> a row per stacked channel (chain, edge, channel), a column per slot.
        scales = weights.index_select(1, ops[0].slot_index.flatten()).view(e, nb, num_slots)
        scales = scales.transpose(0, 1)[:, :, None].expand(nb, e, c, num_slots)
        scales = scales.reshape(nb * e * c, num_slots)
        # base[chain][k] makes chain layer k + 1 (L1, L2); candidates[k]: (chain, f) of those
        # that read it, f of both chains (chain None) or of one (L3, of each chain's own kind).
        base = [[_stack([ch.layers[k] for ch in edges]) for k in range(2)] for edges in chains]
        candidates: List[List[Tuple[Optional[int], StackedOps]]] = [[], []]
        for s, (_, name, reads) in enumerate(chains[0][0].candidates):
            if name.startswith("layers."):
                for b, edges in enumerate(chains):
                    layers = [ch.get_submodule(name) for ch in edges]
                    rows = scales[b * e * c : (b + 1) * e * c, s]
                    candidates[reads - 1].append((b, _stack(layers, rows)))
            else:
                layers = [ch.get_submodule(name) for edges in chains for ch in edges]
                candidates[reads - 1].append((None, _stack(layers, scales[:, s])))

        def run(x: Tensor) -> Tensor:
            outs, owns, ls = [], [], [x] * len(base)
            for k, cands in enumerate(candidates):
                ls = [layers[k](y) for y, layers in zip(ls, base)]
                both = torch.cat(ls, dim=1)
                outs += [f(both) for b, f in cands if b is None]
                owns += [f(ls[b]) for b, f in cands if b is not None]
            # The chains' halves summed as (N, 2, E * C, H, W): its backward is a view, not copies.
            return sum_edges([sum_edges(outs).unflatten(1, (len(ls), -1)).sum(1)] + owns)

        return run

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return self.stacked([self], weights[None])(x)


class MixedOp(nn.Module):
    """The plain DARTS mixed op, every candidate a separate op (the ablation of sharing); its
    arguments and forward are :class:`RepShareMixedOp`'s."""

    def __init__(self, *, channels: int, dil3: bool = False):
        super().__init__()
        self.primitives: Sequence[str] = primitives(dil3=dil3)
        self.ops = nn.ModuleList(
            build_op(name, channels=channels) for name in self.primitives if name != NONE
        )

    @staticmethod
    def stacked(ops: Sequence["MixedOp"], weights: Tensor) -> StackedOps:
        """As :meth:`RepShareMixedOp.stacked`, each edge on its channels (nothing to share)."""
        return lambda x: _cat(
            [op(xe, w) for op, xe, w in zip(ops, x.chunk(len(ops), 1), weights)], 1
        )

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        w: List[Tensor] = list(weights.to(x.dtype).unbind(0))
        out = self.ops[0](x) * w[0]
        for op, wi in zip(self.ops[1:], w[1:]):
            out = torch.addcmul(out, op(x), wi)
        return out
