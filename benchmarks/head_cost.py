#!/usr/bin/env python
"""Parameters, FLOPs and latency (CPU or GPU) of the derived FAD head against FCOS's head.

What: each head is the ``model.head`` of a training config (COCO, 80 classes), instantiated alone:

- FAD, C = 96: ``configs/fad/augment/fad_fcos_R_50_FPN_1x.py`` (the paper's genotypes
  FAD_PAPER_BOX / FAD_PAPER_CLS, two cells per tower);
- FAD, C = 128: ``configs/fad/augment/fad_fcos_X_101_64x4d_FPN_2x_ms.py`` (the same, wider ops);
- FCOS: ``configs/fcos/fcos_R_50_FPN_1x.py`` (detectron2's FCOSHead, 4 conv3x3-GN-ReLU of 256
  channels per tower; its C column is that conv width).

Their input is P3-P7 of an 800x1333 image: 256 channels at strides 8, 16, 32, 64, 128, each map
ceil(800 / s) x ceil(1333 / s) = 100x167, 50x84, 25x42, 13x21, 7x11 (random values, batch 1).

How::

    python benchmarks/head_cost.py [--repeats 5] [--warmup 1] [--threads 1]
    python benchmarks/head_cost.py --device cuda --repeats 50 [--cuda-graphs]

Output: a markdown table with per head its parameters (millions), its GFLOPs by fvcore's
convention (``fvcore.nn.FlopCountAnalysis``: a multiply-add counts as one flop, so 1 GFLOP = 1e9
multiply-adds; convolutions and GroupNorm are counted, ReLU and additions are not) and the median
CPU latency of its forward with its IQR (``torch.no_grad``, heads interleaved per round:
``benchmarks/timing.py``; ``--threads`` torch threads), then the same for the towers alone
(``bbox_tower`` + ``cls_tower``; FCOSHead's ``bbox_subnet`` + ``cls_subnet``; their time is
measured inside the head's forward with hooks),
and a second table of the FAD / FCOS ratios. The FAD head's 1x1 ``box_reduce`` / ``cls_reduce``
convs lie outside its towers, as do both heads' predictor convs. Last, the lines
``fad_head_ms=``, ``fcos_head_ms=`` and ``head_latency_ratio=`` (FAD at C = 96 against FCOS).
``--device cuda`` times on the GPU (synchronized before and after each forward);
``--cuda-graphs`` replays each head from CUDA graphs (:class:`fad.modeling.cuda_graphs.HeadGraphs`,
as ``train.cuda_graphs=True`` does; the towers are then not timed apart).
"""

import argparse
import functools
import math
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import torch
from detectron2.config import LazyConfig, instantiate
from fvcore.nn import FlopCountAnalysis
from timing import TOTAL, time_interleaved
from torch import nn

from fad.modeling.cuda_graphs import HeadGraphs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (
    "configs/fad/augment/fad_fcos_R_50_FPN_1x.py",
    "configs/fad/augment/fad_fcos_X_101_64x4d_FPN_2x_ms.py",
    "configs/fcos/fcos_R_50_FPN_1x.py",
)
#: Tower modules of each head class: FADHead's and detectron2's FCOSHead's.
TOWERS = {"FADHead": ("bbox_tower", "cls_tower"), "FCOSHead": ("bbox_subnet", "cls_subnet")}
IMAGE = (800, 1333)
STRIDES = (8, 16, 32, 64, 128)
CHANNELS = 256


class Head(NamedTuple):
    label: str  # "FAD" or "FCOS"
    width: int  # C: FAD's op width, FCOS's conv width
    module: nn.Module


def fpn_features(height: int, width: int, device: str = "cpu") -> List[torch.Tensor]:
    """Random P3-P7 maps of one image: (1, 256, ceil(height / s), ceil(width / s)) per stride."""
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(1, CHANNELS, math.ceil(height / s), math.ceil(width / s), generator=g).to(
            device
        )
        for s in STRIDES
    ]


def build_head(config: str, device: str = "cpu") -> Head:
    """The ``model.head`` of a config, instantiated on its own, in eval mode."""
    cfg = LazyConfig.load(str(ROOT / config)).model.head
    torch.manual_seed(0)
    module = instantiate(cfg).eval().to(device)
    if "box_tower" in cfg:
        return Head("FAD", cfg.box_tower.op_channels, module)
    return Head("FCOS", cfg.conv_dims[0], module)


def towers(head: nn.Module) -> Sequence[nn.Module]:
    return [getattr(head, name) for name in TOWERS[type(head).__name__]]


def count(head: nn.Module, features: List[torch.Tensor]) -> Dict[str, float]:
    """Parameters (M) and GFLOPs of the head and of its towers."""
    flops = FlopCountAnalysis(head, (features,))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return {
        "params": sum(p.numel() for p in head.parameters()) / 1e6,
        "gflops": flops.total() / 1e9,
        "tower_params": sum(p.numel() for t in towers(head) for p in t.parameters()) / 1e6,
        "tower_gflops": sum(flops.total(n) for n in TOWERS[type(head).__name__]) / 1e9,
    }


class TowerTimer:
    """Accumulates the wall time spent inside a head's towers (forward pre-hooks and hooks)."""

    def __init__(self, head: nn.Module):
        self.total = 0.0
        self._start = 0.0
        for tower in towers(head):
            tower.register_forward_pre_hook(self._enter)
            tower.register_forward_hook(self._exit)

    def _enter(self, module: nn.Module, inputs: tuple) -> None:
        self._start = time.perf_counter()

    def _exit(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.total += time.perf_counter() - self._start

    def take(self) -> Dict[str, float]:
        """``{"towers": seconds}`` since the last take, and start again from zero."""
        total, self.total = self.total, 0.0
        return {"towers": total}


def latencies(
    heads: Sequence[Head], features: List[torch.Tensor], *, repeats: int, warmup: int
) -> List[Dict[str, float]]:
    """Median and IQR of each head's forward time (ms), median of its towers' time; heads
    interleaved, order rotated (``benchmarks/timing.py``)."""
    names = [f"{h.label} C={h.width}" for h in heads]
    timers = {name: TowerTimer(h.module) for name, h in zip(names, heads)}
    with torch.no_grad():
        times = time_interleaved(
            {name: functools.partial(h.module, features) for name, h in zip(names, heads)},
            rounds=repeats,
            warmup=warmup,
            parts={name: t.take for name, t in timers.items()},
        )
    return [
        {
            "head": times[name][TOTAL].median * 1e3,
            "head_iqr": times[name][TOTAL].iqr * 1e3,
            "towers": times[name]["towers"].median * 1e3,
        }
        for name in names
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per head")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards per head first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay each head from CUDA graphs (fad.modeling.cuda_graphs; needs --device cuda)",
    )
    args = parser.parse_args()
    if args.cuda_graphs and args.device != "cuda":
        parser.error("--cuda-graphs needs --device cuda")
    torch.set_num_threads(args.threads)

    features = fpn_features(*IMAGE, device=args.device)
    shapes = ", ".join(f"{f.shape[2]}x{f.shape[3]}" for f in features)
    print(
        f"input: P3-P7 of a {IMAGE[0]}x{IMAGE[1]} image, {CHANNELS} channels, {shapes}; batch 1; "
        f"device {args.device}{' (CUDA graphs)' if args.cuda_graphs else ''}, "
        f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; "
        "GFLOPs = 1e9 multiply-adds (fvcore)"
    )
    heads = [build_head(config, args.device) for config in CONFIGS]
    costs = [count(h.module, features) for h in heads]
    if args.cuda_graphs:
        # A graph replays the whole head, so the towers' hooks time nothing: "-" below.
        for h in heads:
            h.module.forward = HeadGraphs(h.module)
    # A head's graph is captured at its second forward: warm up past it.
    warmup = max(args.warmup, 3) if args.cuda_graphs else args.warmup
    times = latencies(heads, features, repeats=args.repeats, warmup=warmup)

    def towers_ms(t: Dict[str, float], ref: float = 1.0) -> str:
        return "-" if args.cuda_graphs else f"{t['towers'] / ref:.{0 if ref == 1.0 else 2}f}"

    unit = f"{args.device.upper()} ms"
    print()
    print(
        f"| head | C | params (M) | GFLOPs | {unit} | IQR ms "
        f"| towers params (M) | towers GFLOPs | towers {unit} |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for h, c, t in zip(heads, costs, times):
        print(
            f"| {h.label} | {h.width} | {c['params']:.2f} | {c['gflops']:.1f} | {t['head']:.1f} "
            f"| {t['head_iqr']:.1f} | {c['tower_params']:.2f} | {c['tower_gflops']:.1f} "
            f"| {towers_ms(t)} |"
        )

    base = next(i for i, h in enumerate(heads) if h.label == "FCOS")
    print()
    print(
        f"| FAD / FCOS | params | GFLOPs | {unit} | towers params | towers GFLOPs | towers {unit} |"
    )
    print("|---|---|---|---|---|---|---|")
    for h, c, t in zip(heads, costs, times):
        if h.label == "FCOS":
            continue
        c0, t0 = costs[base], times[base]
        print(
            f"| C={h.width} | {c['params'] / c0['params']:.2f} | {c['gflops'] / c0['gflops']:.2f} "
            f"| {t['head'] / t0['head']:.2f} | {c['tower_params'] / c0['tower_params']:.2f} "
            f"| {c['tower_gflops'] / c0['tower_gflops']:.2f} "
            f"| {towers_ms(t, t0['towers'])} |"
        )
    fad = times[0]["head"]  # the R-50 1x head, C = 96
    print(f"fad_head_ms={fad:.3f}")
    print(f"fcos_head_ms={times[base]['head']:.3f}")
    print(f"head_latency_ratio={fad / times[base]['head']:.4f}")


if __name__ == "__main__":
    main()
