"""Candidate ops built alone, stacks of :class:`ConvLayer` (docs/METHOD.md sections 2 and 4)."""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fad.genotypes import NONE, PRIMITIVES_DIL3, op_layers

__all__ = ["ConvLayer", "DilatedDepthwiseConv", "Zero", "build_op", "dilated_depthwise_conv2d"]


class DilatedDepthwiseConv(nn.Conv2d):
    """``nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c)``, run polyphase on the CPU.

    Args:
        channels, dilation: C and d.
        direct: as :func:`dilated_depthwise_conv2d`'s; an attribute too, which
            ``benchmarks/op_count.py`` sets to count on the CPU what a GPU dispatches.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, dilation: int, *, direct: Optional[bool] = None):
        d = dilation
        super().__init__(channels, channels, 3, padding=d, dilation=d, groups=channels)
        self.direct = direct

    def forward(self, x: Tensor) -> Tensor:
        return dilated_depthwise_conv2d(
            x, self.weight, self.bias, dilation=self.dilation[0], direct=self.direct
        )


def dilated_depthwise_conv2d(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], *, dilation: int, direct: Optional[bool]
) -> Tensor:
    """A 3x3 depthwise conv of dilation and padding d; on the CPU, where dilated kernels are
    several times slower, a plain 3x3 conv on the d * d sub-grids of every d-th pixel, cut
    channels-last (the fastest layout; autograd keeps that copy). Traces take the direct
    kernel: the sub-grids branch on whether d divides H and W, which a trace would bake in.

    Args:
        x: (N, C, H, W) input.
        weight: (C, 1, 3, 3) depthwise kernels, e.g. several layers' kernels stacked.
        bias: (C,) or ``None``.
        dilation: d.
        direct: the direct kernel (``True``) or the polyphase form; ``None``: direct on CUDA
            tensors, in traces and in ONNX export.

    Returns:
        (N, C, H, W), in the memory format of ``x``.
    """
    d = dilation
    if direct is None:
        direct = x.is_cuda or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    if direct:
        return F.conv2d(x, weight, bias, padding=d, dilation=d, groups=x.shape[1])
    channels_last = x.is_contiguous(memory_format=torch.channels_last)
    n, c, h, w = x.shape
    hs, ws = -(-h // d), -(-w // d)
    divisible = (hs * d, ws * d) == (h, w)
    if not divisible:  # zeros past the border are the zeros the direct conv pads with
        x = F.pad(x, (0, ws * d - w, 0, hs * d - h))
    # Sub-grid (i, j) of image n holds the pixels (i + d * y, j + d * x): (N * d * d, H/d, W/d, C).
    sub = x.reshape(n, c, hs, d, ws, d).permute(0, 3, 5, 2, 4, 1).reshape(n * d * d, hs, ws, c)
    y = F.conv2d(sub.permute(0, 3, 1, 2), weight, bias, padding=1, groups=c)
    y = y.view(n, d, d, c, hs, ws)
    if channels_last:
        y = y.permute(0, 4, 1, 5, 2, 3).reshape(n, hs * d, ws * d, c).permute(0, 3, 1, 2)
    else:
        y = y.permute(0, 3, 4, 1, 5, 2).reshape(n, c, hs * d, ws * d)
    if divisible:
        return y
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return y[:, :, :h, :w].contiguous(memory_format=layout)


class ConvLayer(nn.Sequential):
    """One FAD layer: conv(s), GroupNorm(32) (``[-2]``), ReLU.

    Args:
        kind: ``"std"`` (3x3 conv), ``"sinSep"`` (3x3 depthwise without bias, 1x1), ``"dil"`` or
            ``"dil3"`` (3x3 depthwise of dilation 2 or 3, 1x1; ``dil3`` is the paper's option).
        channels: input and output channels C (a multiple of 32).

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, *, kind: str, channels: int):
        c = channels
        if kind == "std":
            convs = [nn.Conv2d(c, c, 3, padding=1)]
        elif kind == "sinSep":
            convs = [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1)]
        elif kind in ("dil", "dil3"):
            # The original keeps the dilated depthwise bias: the paper's parameter counts.
            convs = [DilatedDepthwiseConv(c, 2 if kind == "dil" else 3), nn.Conv2d(c, c, 1)]
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
        super().__init__(*convs, nn.GroupNorm(32, c), nn.ReLU(inplace=True))
        self.kind = kind


class Zero(nn.Module):
    """The ``none`` op of a derived cell: zeros of the input's shape."""

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape)


def build_op(name: str, *, channels: int) -> nn.Module:
    """A candidate op, (N, C, H, W) -> (N, C, H, W).

    Args:
        name: an op name of :data:`fad.genotypes.PRIMITIVES_DIL3` (``none`` included).
        channels: op width C.
    """
    if name == NONE:
        return Zero()
    if name not in PRIMITIVES_DIL3:
        raise ValueError(f"unknown FAD op {name!r}; known ops: {', '.join(PRIMITIVES_DIL3)}")
    return nn.Sequential(*(ConvLayer(kind=k, channels=channels) for k in op_layers(name)))
