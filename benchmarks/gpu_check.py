#!/usr/bin/env python
"""The GPU figures of the fast-search work, in one command: under 8 minutes on one H100/H200.

What: each figure comes from a process of its own (a fresh CUDA context: nothing one measurement
captured, cached or allocated reaches the next), one after the other; the ``key=value`` lines
of all of them are printed side by side at the end.

1. Search step, the published setting (R-50 FPN, batch 4, 416x640; the configs' fixed canvas
   pads it to 416x704 on a GPU): ``bench_search_step.py`` first order against an FCOS step, with
   the FAD head replayed from CUDA graphs (``train.cuda_graphs=True``), then eagerly:
   ``search_step_ratio_first_order_cuda=``, ``search_hours_projected_cuda=`` (17,500
   iterations) and the same with ``_eager``; ``--profile`` adds the kernel launches and busy GPU
   time of one step. The search tower's forward against the edge-by-edge reference
   (``bench_search_cell.py``): ``speedup_quick_cuda=``, ``speedup_voc_cuda=`` (above 1: the
   grouped forward, the only one, is faster on the GPU too).
2. Training step (R-50 FPN, 2 images of 800x1333 per GPU): the derived FAD detector (paper
   genotypes) against FCOS, graphed then eager: ``train_step_ratio_cuda=`` and ``_eager``.
3. Head latency (batch 1, P3-P7 of 800x1333, ``head_cost.py``): ``fad_head_ms_cuda=``,
   ``fcos_head_ms_cuda=``, ``head_latency_ratio_cuda=`` with both heads replayed from graphs,
   and the same with ``_eager``.
4. Agreement (``--agreement``): a search run and a derived training run (R-50, 2 x 416x640,
   4 iterations) built twice from the same seed, one with CUDA graphs; losses and, in the
   search, alpha gradients compared after every iteration (cuDNN deterministic):
   ``graphs_agree=`` (relative differences at most 1e-4), ``graphs_max_rel_loss=``,
   ``graphs_max_rel_alpha_grad=``, ``graphs_captured=``.

How (on the GPU machine; docs/BENCHMARKS.md says how to prepare it, and
``benchmarks/gpu_check.sh`` installs the carried packages first)::

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --smoke   # the plumbing, on a CPU, at toy sizes

Output: each process's table as it finishes, then a table of the figures with CUDA graphs and
eagerly, side by side, and all ``key=value`` lines (``nan`` for a figure whose process failed,
with its output's tail above). A process gets ``--timeout`` seconds at most, all of them
``--budget`` seconds (7.5 minutes) together.
"""

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-4
AGREEMENT_ITERS = 4


def _figures(smoke: bool) -> List[Tuple[str, List[str], Dict[str, str]]]:
    """(label, command, {key printed by the command: key reported}) per process."""
    py = [sys.executable]
    if smoke:  # toy sizes on the CPU, no graphs: does every process run and print its keys?
        step = ["--device", "cpu", "--batch", "1", "--iters", "1", "--warmup", "0", "--no-memory"]
        return [
            (
                "search (smoke)",
                py
                + [str(HERE / "bench_search_step.py"), *step, "--height", "128", "--width", "192"]
                + ["--cases", "fcos", "search_first_order", "--projected-iters", "17500"],
                {
                    "search_step_ratio_first_order": "search_step_ratio_first_order_cuda_eager",
                    "search_hours_projected": "search_hours_projected_cuda_eager",
                },
            ),
            (
                "training (smoke)",
                py
                + [str(HERE / "bench_search_step.py"), *step, "--height", "128", "--width", "192"]
                + ["--cases", "fcos", "fad_train"],
                {"train_step_ratio": "train_step_ratio_cuda_eager"},
            ),
            (
                "head latency (smoke)",
                py + [str(HERE / "head_cost.py"), "--repeats", "1", "--warmup", "0"],
                {k: f"{k}_cuda_eager" for k in _HEAD_KEYS},
            ),
            (
                "search cell (smoke)",
                py + [str(HERE / "bench_search_cell.py"), "--sizes", "quick", "--rounds", "1"],
                {"speedup_quick": "speedup_quick_cuda"},
            ),
            (
                "agreement (smoke)",
                py
                + [str(Path(__file__).resolve()), "--agreement", "--device", "cpu"]
                + ["--iters", "1", "--height", "128", "--width", "192"],
                {k: k for k in _AGREEMENT_KEYS},
            ),
        ]
    search = ["--device", "cuda", "--batch", "4", "--height", "416", "--width", "640"]
    search += ["--cases", "fcos", "search_first_order", "--projected-iters", "17500"]
    search += ["--no-memory"]
    train = ["--device", "cuda", "--batch", "2", "--height", "800", "--width", "1333"]
    train += ["--cases", "fcos", "fad_train", "--no-memory"]
    head = [str(HERE / "head_cost.py"), "--device", "cuda", "--repeats", "50", "--warmup", "5"]
    step = [str(HERE / "bench_search_step.py")]
    figures = []
    for mode, extra, iters in (("", ["--cuda-graphs"], "10"), ("_eager", [], "5")):
        timing = ["--iters", iters, "--warmup", "3"]
        figures += [
            (
                f"search step{mode or ' (graphs)'}",
                py + step + search + timing + extra + ["--profile"],
                {
                    "search_step_ratio_first_order": f"search_step_ratio_first_order_cuda{mode}",
                    "search_hours_projected": f"search_hours_projected_cuda{mode}",
                },
            ),
            (
                f"training step{mode or ' (graphs)'}",
                py + step + train + timing + extra,
                {"train_step_ratio": f"train_step_ratio_cuda{mode}"},
            ),
            (
                f"head latency{mode or ' (graphs)'}",
                py + head + extra,
                {k: f"{k}_cuda{mode}" for k in _HEAD_KEYS},
            ),
        ]
    # The search cell's one forward (edges by groups) against the edge-by-edge reference.
    cell = [str(HERE / "bench_search_cell.py"), "--device", "cuda", "--rounds", "10"]
    figures.append(
        ("search cell, grouped vs edge by edge", py + cell, {k: f"{k}_cuda" for k in _CELL_KEYS})
    )
    agreement = [str(Path(__file__).resolve()), "--agreement", "--device", "cuda"]
    figures.append(("agreement", py + agreement, {k: k for k in _AGREEMENT_KEYS}))
    return figures


_HEAD_KEYS = ("fad_head_ms", "fcos_head_ms", "head_latency_ratio")
_CELL_KEYS = ("speedup_quick", "speedup_voc")
#: The figures measured with CUDA graphs and eagerly, shown side by side.
PAIRED = (
    "search_step_ratio_first_order_cuda",
    "search_hours_projected_cuda",
    "train_step_ratio_cuda",
    "fad_head_ms_cuda",
    "fcos_head_ms_cuda",
    "head_latency_ratio_cuda",
)
_AGREEMENT_KEYS = (
    "graphs_agree",
    "graphs_max_rel_loss",
    "graphs_max_rel_alpha_grad",
    "graphs_captured",
)


def _key_values(output: str) -> Dict[str, str]:
    pairs = (line.split("=", 1) for line in output.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if k.strip().isidentifier() and " " not in v}


def run_figures(*, smoke: bool, timeout: float, budget: float) -> Dict[str, str]:
    """Run every figure's process; return the reported key=value pairs (``nan`` if it failed).

    A process gets ``timeout`` seconds, or what is left of ``budget`` for all of them.
    """
    results: Dict[str, str] = {}
    begin = time.perf_counter()
    for label, cmd, keys in _figures(smoke):
        start = time.perf_counter()
        timeout = max(1.0, min(timeout, budget - (start - begin)))
        print(f"\n== {label}: {' '.join(Path(c).name if '/' in c else c for c in cmd)}", flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            output, ok = proc.stdout + proc.stderr, proc.returncode == 0
        except subprocess.TimeoutExpired as e:
            output, ok = f"{e.stdout or ''}{e.stderr or ''}\ntimed out after {timeout:.0f} s", False
        found = _key_values(output)
        shown = [
            line
            for line in output.splitlines()
            if line.startswith(("|", "profile", "projected"))
            or "=" in line
            and line.split("=", 1)[0] in keys
        ]
        print("\n".join(shown if ok else output.splitlines()[-40:]), flush=True)
        print(f"({label}: {time.perf_counter() - start:.0f} s{'' if ok else ', FAILED'})")
        for key, name in keys.items():
            results[name] = found.get(key, "nan") if ok else "nan"
    return results


def agreement(device: str, *, iters: int, height: int, width: int) -> None:
    """Graphed against eager steps: search (losses, alpha gradients) and derived training."""
    import torch
    from bench_search_step import build_case

    torch.backends.cudnn.deterministic = True
    dev = torch.device(device)
    rel_loss, rel_grad, captured = 0.0, 0.0, 0
    for name in ("search_first_order", "fad_train"):
        cases = [
            build_case(name, device=dev, batch=2, height=height, width=width, cuda_graphs=graphs)
            for graphs in (False, dev.type == "cuda")
        ]
        for _ in range(iters):
            for case in cases:
                case.step()
            latest = [c.trainer.storage.latest() for c in cases]
            for key in ("total_loss", "arch_loss"):
                if key in latest[0]:
                    a, b = (float(v[key][0]) for v in latest)
                    rel_loss = max(rel_loss, abs(a - b) / max(abs(b), 1e-12))
            if name.startswith("search"):
                alphas = [c.trainer.architect.alphas for c in cases]
                for eager, graphed in zip(*alphas):
                    diff = (graphed.grad - eager.grad).norm() / eager.grad.norm().clamp_min(1e-30)
                    rel_grad = max(rel_grad, float(diff))
        graphs = getattr(cases[1].trainer.model.head.forward, "graphs", {})
        captured += len(graphs)
    agree = rel_loss <= TOLERANCE and rel_grad <= TOLERANCE and math.isfinite(rel_loss)
    if dev.type == "cuda":  # nothing replayed, nothing compared
        agree = agree and captured > 0
    print(f"graphs_agree={agree}")
    print(f"graphs_max_rel_loss={rel_loss:.3e}")
    print(f"graphs_max_rel_alpha_grad={rel_grad:.3e}")
    print(f"graphs_captured={captured}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="toy sizes on the CPU, no graphs")
    parser.add_argument("--timeout", type=float, default=150, help="seconds per process at most")
    parser.add_argument("--budget", type=float, default=450, help="seconds for all processes")
    parser.add_argument("--agreement", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--iters", type=int, default=AGREEMENT_ITERS, help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, default=416, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=640, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agreement:
        sys.path.insert(0, str(HERE))
        agreement(args.device, iters=args.iters, height=args.height, width=args.width)
        return
    start = time.perf_counter()
    results = run_figures(smoke=args.smoke, timeout=args.timeout, budget=args.budget)
    print(f"\n== all figures ({time.perf_counter() - start:.0f} s)")
    print("| figure | CUDA graphs | eager |")
    print("|---|---|---|")
    for key in PAIRED:
        print(f"| {key} | {results.get(key, '-')} | {results.get(key + '_eager', '-')} |")
    for key, value in results.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
