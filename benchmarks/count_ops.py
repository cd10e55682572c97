#!/usr/bin/env python
"""ATen operations dispatched by one training or search step: a noise-free proxy for kernels.

What: one iteration of each case, built by ``bench_search_step.py``'s builders as the scripts
build it (R-50 FPN, random weights, fixed synthetic batches), counted with
:class:`op_count.OpCounter` (a ``TorchDispatchMode``: forward, backward and optimizer step,
every ATen operation dispatched below autograd) on the CPU:

- ``fcos``: detectron2's FCOS training iteration (``configs/fcos/fcos_R_50_FPN_1x.py``);
- ``search_first_order``: ``SearchTrainer.run_step`` of ``configs/fad/search/
  fad_fcos_R_50_FPN_voc.py``: the alpha step, then the weight step, counted apart as well
  (``weight`` is the weight-only step: forward, backward, clip and SGD with frozen alphas);
- ``fad_train``: a training iteration of FCOS with the derived FAD head
  (``configs/fad/augment/fad_fcos_R_50_FPN_1x.py``, the paper's genotypes, two cells a tower).

Each case runs one untimed iteration first (optimizer state, lazy initialisation), then the
counted one. Counts do not depend on the machine, the threads or the image content.

``--path cuda`` (the default) dispatches what the CUDA code path dispatches
(:func:`op_count.gpu_forms`): dilated depthwise convs run as the direct conv (the CPU's
polyphase conv adds the copies and views of its sub-grids), and the optimizers take their
multi-tensor (``foreach``) form, torch's default on GPUs (the CPU default loops over the
parameters). ``--path cpu`` counts what a CPU run dispatches.

How::

    python benchmarks/count_ops.py                       # R-50, 2 x 416x640, the CUDA path
    python benchmarks/count_ops.py --path cpu --top 15   # the CPU path, and the 15 most common

Output: a markdown table, per case (and per phase of the search step) the dispatched ATen
operations and, of those, the ones that would launch a kernel on a GPU (everything but views,
metadata operations and bare allocations: :func:`op_count.launches_kernel`), with the
kernel ratio to FCOS; then ``key=value`` lines ``aten_ops_<case>=`` and ``kernel_ops_<case>=``
(``_alpha`` / ``_weight`` for the search step's phases). Results: docs/BENCHMARKS.md.
"""

import argparse
from typing import Dict, Optional

import torch
from bench_search_step import Case, build_case
from op_count import OpCounter, gpu_forms

CASES = ("fcos", "search_first_order", "fad_train")
PHASES = {"search_first_order": ("alpha", "weight")}


def count_case(case: Case, *, path: str) -> OpCounter:
    """Count one iteration of ``case`` (after one uncounted one), the alpha step apart."""
    trainer = case.trainer
    counter = OpCounter()
    arch_step = getattr(trainer, "_arch_step", None)
    if arch_step is not None:

        def counted_arch_step(*args, **kwargs):
            with counter.phase("alpha"):
                return arch_step(*args, **kwargs)

        trainer._arch_step = counted_arch_step
    if path == "cuda":
        gpu_forms(trainer.model)
    case.step()
    with counter:
        case.step()
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=2, help="images per batch")
    parser.add_argument("--height", type=int, default=416)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--path", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--top", type=int, default=0, help="also list each case's N top ops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch={torch.__version__} path={args.path} batch={args.batch} "
        f"image={args.height}x{args.width}"
    )
    foreach: Optional[bool] = True if args.path == "cuda" else None
    rows: Dict[str, Dict[str, int]] = {}
    for name in [c for c in CASES if c in args.cases]:
        case = build_case(
            name,
            device=torch.device("cpu"),
            batch=args.batch,
            height=args.height,
            width=args.width,
            foreach=foreach,
        )
        counter = count_case(case, path=args.path)
        rows[name] = {"aten": counter.total(), "kernels": counter.kernels()}
        for phase in PHASES.get(name, ()):
            key = None if phase == "weight" else phase  # the weight step is what is not alpha
            rows[f"{name}_{phase}"] = {"aten": counter.total(key), "kernels": counter.kernels(key)}
        if args.top:
            print(f"top ops of {name}:")
            for op, n in counter.by_op().most_common(args.top):
                print(f"  {n:7d} {op}")
        del case

    fcos = rows["fcos"]["kernels"] if "fcos" in rows else float("nan")
    print("| case | ATen ops | kernel ops | kernel ops / FCOS |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['aten']:,} | {r['kernels']:,} | {r['kernels'] / fcos:.2f} |")
    for name, r in rows.items():
        print(f"aten_ops_{name}={r['aten']}")
        print(f"kernel_ops_{name}={r['kernels']}")


if __name__ == "__main__":
    main()
