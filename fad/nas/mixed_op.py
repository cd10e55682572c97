"""Mixed ops of a search edge: the representation-sharing op of FAD and the plain DARTS one.

Both take the input and a vector of softmaxed architecture weights, one per candidate of
:func:`fad.genotypes.primitives` (``none`` last), and return ``sum_i w_i * candidate_i(x)``.
"""

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import BASE_TYPES, NONE, primitives

from .ops import ConvLayer, build_op

__all__ = ["MixedOp", "RepShareMixedOp", "SharedChain"]


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
    """

    def __init__(self, *, base: str, channels: int, dil3: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(ConvLayer(kind=base, channels=channels) for _ in range(3))
        self.dil = nn.ModuleList(ConvLayer(kind="dil", channels=channels) for _ in range(2))
        self.dil3 = ConvLayer(kind="dil3", channels=channels) if dil3 else None
        self.decouple = nn.ModuleList(
            nn.Conv2d(channels, channels, 1, bias=False) for _ in range(2)
        )

    @property
    def num_candidates(self) -> int:
        return 5 + (self.dil3 is not None)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) input.
            weights: (num_candidates,) weights of this chain's candidates, in alpha order.

        Returns:
            (N, C, H, W) weighted sum of the candidates.
        """
        w = weights.to(x.dtype).unbind(0)
        l1 = self.layers[0](x)
        # A 1x1 conv is linear, so scaling its kernel (C x C numbers) instead of its output
        # (N x C x H x W numbers) gives the same weighted candidate for less work.
        out = F.conv2d(l1, self.decouple[0].weight * w[0])
        out = torch.addcmul(out, self.dil[0](l1), w[1])
        i = 2
        if self.dil3 is not None:
            out = torch.addcmul(out, self.dil3(l1), w[2])
            i = 3
        l2 = self.layers[1](l1)
        out = out + F.conv2d(l2, self.decouple[1].weight * w[i])
        out = torch.addcmul(out, self.dil[1](l2), w[i + 1])
        return torch.addcmul(out, self.layers[2](l2), w[i + 2])


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

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) input.
            weights: (len(primitives),) softmaxed architecture weights, ``none`` last.

        Returns:
            (N, C, H, W) weighted sum of the candidates.
        """
        n = self.chains[0].num_candidates
        out = self.chains[0](x, weights[:n])
        return out + self.chains[1](x, weights[n : 2 * n])


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

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Same contract as :meth:`RepShareMixedOp.forward`."""
        w: List[torch.Tensor] = list(weights.to(x.dtype).unbind(0))
        out = self.ops[0](x) * w[0]
        for op, wi in zip(self.ops[1:], w[1:]):
            out = torch.addcmul(out, op(x), wi)
        return out
