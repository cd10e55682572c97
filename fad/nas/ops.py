"""Candidate operations of the FAD search space (docs/METHOD.md section 2).

Every op is a stack of "layers", each ``conv -> GroupNorm(32) -> ReLU`` at the cell's op width C:

- ``std``: 3x3 conv with bias;
- ``sinSep`` (single separable): 3x3 depthwise conv without bias, then 1x1 pointwise conv with bias;
- ``dil``: 3x3 depthwise conv with dilation 2 (with bias), then 1x1 pointwise conv with bias;
- ``dil3``: as ``dil`` with dilation 3 (the paper's 12-candidate space only; the authors' code
  dropped it because it hurt detection, so it is an option here).

An op name reads as its stack: ``std_conv_3x3_x2+dil_conv_3x3`` is std, std, dil (the names and
their order are :mod:`fad.genotypes`' vocabulary). These are the *derived* ops, built alone when a
genotype is trained; the search-time mixed op that shares their computation lives in
:mod:`fad.nas.mixed_op`.
"""

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import NONE, PRIMITIVES_DIL3, op_layers

__all__ = [
    "ConvLayer",
    "DilatedDepthwiseConv",
    "Zero",
    "build_op",
    "dilated_depthwise_conv2d",
]


class DilatedDepthwiseConv(nn.Conv2d):
    """A 3x3 depthwise conv with dilation d and padding d ("same" size), with bias.

    Same parameters and outputs as ``nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c)``. On
    the CPU, PyTorch's dilated depthwise kernels (backward above all) are several times slower
    than undilated ones, so this computes the same conv "polyphase": every d-th pixel forms one
    of d * d sub-grids, on which the dilated conv is an ordinary 3x3 conv, run on all sub-grids
    in one batch. The sub-grids are cut in (N, H, W, C) order, so they come out channels-last,
    where PyTorch's CPU depthwise kernels are fastest; the output keeps the input's layout. The
    price is memory: autograd keeps the sub-grid copy of the input for the backward. GPUs use
    the direct kernel.

    Tracing and ONNX export use the direct kernel too: the polyphase path branches in Python on
    whether H and W divide by d, and a trace would bake the branch taken at the traced size into
    the exported model, which would then fail (or pad wrongly) at other sizes.

    Args:
        channels: C.
        dilation: d.
        direct: the direct kernel (``True``) or the polyphase form (``False``); ``None``: direct
            on CUDA tensors, in traces and in ONNX export. An attribute too, which
            ``benchmarks/op_count.py`` sets to count on the CPU what a GPU dispatches.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, dilation: int, *, direct: Optional[bool] = None):
        super().__init__(
            channels, channels, 3, padding=dilation, dilation=dilation, groups=channels
        )
        self.direct = direct

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dilated_depthwise_conv2d(
            x, self.weight, self.bias, dilation=self.dilation[0], direct=self.direct
        )


def dilated_depthwise_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    dilation: int,
    direct: Optional[bool] = None,
) -> torch.Tensor:
    """The conv of :class:`DilatedDepthwiseConv` with given parameters (polyphase on the CPU).

    Args:
        x: (N, C, H, W) input.
        weight: (C, 1, 3, 3) depthwise kernels, e.g. several layers' kernels stacked.
        bias: (C,) or ``None``.
        dilation: d, also the padding.
        direct: as :class:`DilatedDepthwiseConv`'s.

    Returns:
        (N, C, H, W), in the memory format of ``x``.
    """
    d = dilation
    if direct is None:
        direct = x.is_cuda or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    if direct:
        return F.conv2d(x, weight, bias, padding=d, dilation=d, groups=x.shape[1])
    memory_format = (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    n, c, h, w = x.shape
    hs, ws = -(-h // d), -(-w // d)
    divisible = (hs * d, ws * d) == (h, w)
    if not divisible:
        # Zero rows/columns past the border are exactly the zeros the direct conv pads with.
        x = F.pad(x, (0, ws * d - w, 0, hs * d - h))
    # One copy in, one copy out: sub-grid (i, j) of image n holds the pixels
    # (i + d * y, j + d * x), laid out (N * d * d, H / d, W / d, C), i.e. channels-last.
    sub = x.reshape(n, c, hs, d, ws, d).permute(0, 3, 5, 2, 4, 1).reshape(n * d * d, hs, ws, c)
    y = F.conv2d(sub.permute(0, 3, 1, 2), weight, bias, padding=1, groups=c)
    y = y.view(n, d, d, c, hs, ws)
    if memory_format == torch.channels_last:
        y = y.permute(0, 4, 1, 5, 2, 3).reshape(n, hs * d, ws * d, c).permute(0, 3, 1, 2)
    else:
        y = y.permute(0, 3, 4, 1, 5, 2).reshape(n, c, hs * d, ws * d)
    if divisible:
        return y
    return y[:, :, :h, :w].contiguous(memory_format=memory_format)


class ConvLayer(nn.Sequential):
    """One FAD layer: conv (std, sinSep, dil or dil3 form) -> GroupNorm(32) -> ReLU.

    Args:
        kind: ``"std"``, ``"sinSep"``, ``"dil"`` or ``"dil3"``.
        channels: input and output channels C (a multiple of 32 for GroupNorm(32)).

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, *, kind: str, channels: int):
        c = channels
        if kind == "std":
            convs = [nn.Conv2d(c, c, 3, padding=1)]
        elif kind == "sinSep":
            convs = [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1)]
        elif kind in ("dil", "dil3"):
            d = 2 if kind == "dil" else 3
            # The original FAD code keeps the depthwise bias in dilated layers (unlike sinSep);
            # keeping it makes the paper's genotypes build the same parameter count.
            convs = [DilatedDepthwiseConv(c, d), nn.Conv2d(c, c, 1)]
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
        super().__init__(*convs, nn.GroupNorm(32, c), nn.ReLU(inplace=True))
        self.kind = kind

    @property
    def convs(self) -> List[nn.Conv2d]:
        """The layer's convs, in order (one for std, depthwise and pointwise otherwise)."""
        return [m for m in self if isinstance(m, nn.Conv2d)]

    @property
    def norm(self) -> nn.GroupNorm:
        return self[-2]


class Zero(nn.Module):
    """The ``none`` op of a derived cell: zeros of the input's shape (never used by the mixed op,
    which skips ``none`` without computing anything)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape)


def build_op(name: str, *, channels: int) -> nn.Module:
    """Build a candidate op on its own (derived mode).

    Args:
        name: an op name of :data:`fad.genotypes.PRIMITIVES_DIL3` (``none`` included).
        channels: op width C.

    Returns:
        A module mapping (N, C, H, W) -> (N, C, H, W).
    """
    if name == NONE:
        return Zero()
    if name not in PRIMITIVES_DIL3:
        raise ValueError(f"unknown FAD op {name!r}; known ops: {', '.join(PRIMITIVES_DIL3)}")
    return nn.Sequential(*(ConvLayer(kind=k, channels=channels) for k in op_layers(name)))
