#!/usr/bin/env python
"""The search tower's one forward (edges by groups) against edge by edge: time and kernels.

What: forward + backward of one :class:`fad.nas.search_cells.SearchTower` (1 cell, 3 nodes, the
10-op space) on all 5 FPN levels, in its own forward, which runs a cell's edges by groups as
grouped convs, and edge by edge (``tests/nas/edgewise.py``, the test reference, which dispatches
what the edge-by-edge forward of commit 60478c4 did), on the same parameters and inputs. The
loss is the sum of the outputs; inputs and alphas require grad, as in the search.

Sizes: ``quick`` is the quick start's (``configs/fad/search/fad_fcos_R_18_synthetic.py``: FPN and
op width 64, batch 4 of 128-px images, P3 16x16 down to P7 1x1); ``voc`` the VOC search's
(``configs/fad/search/fad_fcos_R_50_FPN_voc.py``: FPN width 256, op width 96, 416x640 images,
P3 52x80 down to P7 4x5), batch 2 by default (the config's is 4) to keep a CPU round short.

How: torch.utils.benchmark ``Timer.blocked_autorange`` per form and round, one thread; the
forms alternate their order round by round so that the noise of a shared machine hits both
alike, and the spread over rounds is reported. The kernels are counted once per form with
``benchmarks/op_count.py`` (forward and backward, the GPU's forms: :func:`op_count.gpu_forms`),
the device-free measure of a GPU's launches. ::

    python benchmarks/bench_search_cell.py                    # both sizes, 5 rounds
    python benchmarks/bench_search_cell.py --sizes quick --rounds 10
    python benchmarks/bench_search_cell.py --device cuda --rounds 20 --min-run-time 0.2

On CUDA, ``Timer`` synchronizes the device around each measurement.

Output: per size and form the median, minimum and maximum of the rounds' medians (ms), the
kernels, and the ratio edge by edge / grouped (above 1: the grouped forward is faster) per round
(median, min, max). Last lines: ``speedup_<size>=<float>`` (median ratio) and
``kernel_ratio_<size>=<float>``. Results: docs/BENCHMARKS.md.
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch
from op_count import OpCounter, gpu_forms
from torch.utils.benchmark import Timer

from fad.nas.search_cells import SearchTower

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "nas"))
from edgewise import tower_forward  # noqa: E402

#: (FPN width, op width, batch, P3 size) of each search config.
SIZES = {"quick": (64, 64, 4, (16, 16)), "voc": (256, 96, 2, (52, 80))}
FORMS = {"grouped": lambda tower, xs: tower(xs), "edges": tower_forward}


def fpn_levels(p3, num_levels: int = 5):
    """(H, W) of P3 to P7: each level halves the previous one, rounding up (as the FPN does)."""
    sizes = [p3]
    for _ in range(num_levels - 1):
        h, w = sizes[-1]
        sizes.append((-(-h // 2), -(-w // 2)))
    return sizes


def measure(
    size: str, *, rounds: int, min_run_time: float, batch: int = 0, device: str = "cpu"
) -> dict:
    channels, op_channels, default_batch, p3 = SIZES[size]
    torch.manual_seed(0)
    tower = SearchTower(in_channels=channels, op_channels=op_channels).to(device)
    xs = [
        torch.randn(batch or default_batch, channels, h, w, device=device, requires_grad=True)
        for h, w in fpn_levels(p3)
    ]

    def step(forward):
        tower.zero_grad(set_to_none=True)
        for x in xs:
            x.grad = None
        sum(o.sum() for o in forward(tower, xs)).backward()

    timers = {
        name: Timer("step(f)", globals={"step": step, "f": f}, num_threads=1)
        for name, f in FORMS.items()
    }
    times = {name: [] for name in FORMS}
    for r in range(rounds):
        for name in list(FORMS) if r % 2 == 0 else list(FORMS)[::-1]:
            times[name].append(timers[name].blocked_autorange(min_run_time=min_run_time).median)
    gpu_forms(tower)
    kernels = {}
    for name, f in FORMS.items():
        with OpCounter() as counter:
            step(f)
        kernels[name] = counter.kernels()
    ratios = [e / g for e, g in zip(times["edges"], times["grouped"])]
    return {"times": times, "kernels": kernels, "ratios": ratios, "levels": fpn_levels(p3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="s per blocked_autorange")
    parser.add_argument("--batch", type=int, default=0, help="images (default: per size)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch={torch.__version__} device={args.device} threads=1 rounds={args.rounds}")
    results = {
        s: measure(
            s,
            rounds=args.rounds,
            min_run_time=args.min_run_time,
            batch=args.batch,
            device=args.device,
        )
        for s in args.sizes
    }
    print("| size | form | median ms | min ms | max ms | kernels (GPU forms) |")
    print("|---|---|---|---|---|---|")
    for size, r in results.items():
        for name, ts in r["times"].items():
            ms = [t * 1e3 for t in ts]
            print(
                f"| {size} {r['levels'][0][0]}x{r['levels'][0][1]} | {name} "
                f"| {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} "
                f"| {r['kernels'][name]:,} |"
            )
    for size, r in results.items():
        q = r["ratios"]
        print(
            f"{size}: edges/grouped per round median {statistics.median(q):.2f} "
            f"min {min(q):.2f} max {max(q):.2f}"
        )
    for size, r in results.items():
        print(f"speedup_{size}={statistics.median(r['ratios']):.3f}")
        print(f"kernel_ratio_{size}={r['kernels']['edges'] / r['kernels']['grouped']:.3f}")


if __name__ == "__main__":
    main()
