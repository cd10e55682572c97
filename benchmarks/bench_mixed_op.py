#!/usr/bin/env python
"""Speed of FAD's representation-sharing mixed op against the plain DARTS mixed op.

What: forward + backward of one search edge, :class:`fad.nas.mixed_op.RepShareMixedOp` (two
shared chains, one per base type; its forward is the cells' stacked form for one edge) against
:class:`fad.nas.mixed_op.MixedOp` (the ten stand-alone candidate ops, twelve with ``--dil3``),
at the same width on the same input. The architecture
weights are the softmax of a random alpha vector (one entry per candidate, ``none`` included)
that requires grad, so the backward pass reaches the alphas too; the input requires grad as well,
as an edge's input does inside a search cell. The loss is ``output.sum()``.

How: after ``--warmup`` untimed rounds, ``--repeats`` rounds each time one forward + backward of
both ops, in an order that alternates round by round (A B, B A, ...) so that the noise of a shared
machine hits both alike; gradients are cleared (set to ``None``) outside the timed region. On CUDA
the device is synchronized before each clock reading. ::

    python benchmarks/bench_mixed_op.py                     # C=96, 2x96x52x80, CPU
    python benchmarks/bench_mixed_op.py --threads 1 --repeats 10
    python benchmarks/bench_mixed_op.py --device cuda --repeats 200 --warmup 20
    python benchmarks/bench_mixed_op.py --dil3              # the 12-op space

Output: the parameter count and forward FLOPs of each op (counted by
:class:`torch.utils.flop_counter.FlopCounterMode`: convolutions only, GroupNorm and the weighted
sum are not counted) and their ratio (``flop_ratio``), then per op the median, the interquartile
range and the minimum of the timed rounds in ms. The last line is
``rs_speedup=<float>``: plain mixed op median time / sharing mixed op median time (higher means
the sharing op is faster).
"""

import argparse
import statistics
import time
from typing import Dict, List

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fad.genotypes import primitives
from fad.nas.mixed_op import MixedOp, RepShareMixedOp


class Case:
    """One mixed op with its input and alpha logits, run forward + backward on demand."""

    def __init__(self, name: str, op: nn.Module, x: torch.Tensor, alpha: torch.Tensor):
        self.name = name
        self.op = op
        self.x = x
        self.alpha = alpha

    def _sync(self) -> None:
        if self.x.device.type == "cuda":
            torch.cuda.synchronize(self.x.device)

    def _clear_grads(self) -> None:
        self.op.zero_grad(set_to_none=True)
        self.x.grad = None
        self.alpha.grad = None

    def _forward_backward(self) -> None:
        self.op(self.x, self.alpha.softmax(0)).sum().backward()

    def step(self) -> float:
        """One forward + backward from cleared gradients; return its wall time in seconds."""
        self._clear_grads()
        self._sync()
        start = time.perf_counter()
        self._forward_backward()
        self._sync()
        return time.perf_counter() - start

    def forward_flops(self) -> int:
        """FLOPs of one forward pass, as FlopCounterMode counts them."""
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            self.op(self.x, self.alpha.softmax(0))
        return counter.get_total_flops()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.op.parameters())


def time_cases(cases: List[Case], *, repeats: int, warmup: int) -> Dict[str, List[float]]:
    """Interleave the cases, order reversed every round; times (s) of the rounds after warm-up."""
    times: Dict[str, List[float]] = {c.name: [] for c in cases}
    for r in range(warmup + repeats):
        for case in cases if r % 2 == 0 else cases[::-1]:
            elapsed = case.step()
            if r >= warmup:
                times[case.name].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--channels", type=int, default=96, help="op width C")
    parser.add_argument("--shape", type=int, nargs=3, default=(2, 52, 80), metavar=("N", "H", "W"))
    parser.add_argument("--repeats", type=int, default=40, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--dil3", action="store_true", help="the 12-op space")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (for the interquartile range)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    n, h, w = args.shape
    torch.manual_seed(0)
    x = torch.randn(n, args.channels, h, w, device=device, requires_grad=True)
    alpha = torch.randn(len(primitives(dil3=args.dil3)), device=device, requires_grad=True)
    cases = [
        Case(name, cls(channels=args.channels, dil3=args.dil3).to(device), x, alpha)
        for name, cls in (("sharing", RepShareMixedOp), ("plain", MixedOp))
    ]
    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"input={n}x{args.channels}x{h}x{w} candidates={alpha.numel()} "
        f"repeats={args.repeats} warmup={args.warmup}"
    )

    flops = {c.name: c.forward_flops() for c in cases}
    for case in cases:
        print(
            f"{case.name}: params={case.num_params()} forward GFLOPs={flops[case.name] / 1e9:.3f}"
        )
    print(f"flop_ratio plain/sharing (forward)={flops['plain'] / flops['sharing']:.3f}")

    times = time_cases(cases, repeats=args.repeats, warmup=args.warmup)
    print("| op | median ms | IQR ms | min ms |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        q1, _, q3 = statistics.quantiles(ts, n=4)
        print(
            f"| {name} | {statistics.median(ts) * 1e3:.1f} | {(q3 - q1) * 1e3:.1f} "
            f"| {min(ts) * 1e3:.1f} |"
        )
    speedup = statistics.median(times["plain"]) / statistics.median(times["sharing"])
    print(f"rs_speedup={speedup:.4f}")


if __name__ == "__main__":
    main()
