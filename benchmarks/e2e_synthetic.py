"""End to end on the synthetic dataset: search, train the searched detector, evaluate; and the
plain FCOS baseline trained and evaluated with the same budget.

Does the pipeline learn? This runs what a user runs, as subprocesses:

1. ``search_net.py`` on configs/fad/search/fad_fcos_R_18_synthetic.py (``--search-iters``);
2. ``train_net.py --genotype-file <search>/genotype.log`` on
   configs/fad/augment/fad_fcos_R_18_synthetic.py (``--train-iters``), COCO evaluation at the end;
3. ``train_net.py`` on configs/fcos/fcos_R_18_synthetic.py, same iterations, schedule, batch.

Both detectors are ResNet-18 FPN-64 trained from scratch on 128-px images on the CPU; only the
head differs. It prints AP and AP50 of both, the wall time of every phase, and last the lines
``fad_ap=<AP>`` and ``fcos_ap=<AP>`` (COCO AP, 0-100). Target: fad_ap >= 0.9 * fcos_ap.

    python benchmarks/e2e_synthetic.py                  # about 15 minutes on 2 CPU cores
    python benchmarks/e2e_synthetic.py --train-iters 100 --search-iters 20   # a smoke run
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
AP_ROW = re.compile(r"copypaste: ([-\d.na]+(?:,[-\d.na]+){5})\s*$", re.M)


def run_phase(name: str, args: List[str]) -> Tuple[str, float]:
    """Run one script to completion; returns its output and wall time in seconds."""
    print(f"[{name}] python {' '.join(args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"[{name}] failed with exit status {proc.returncode}:\n{output[-4000:]}")
    print(f"[{name}] done in {seconds:.0f} s", flush=True)
    return output, seconds


def coco_ap(output: str) -> Dict[str, float]:
    """AP and AP50 from detectron2's ``copypaste:`` lines (the last evaluation printed)."""
    rows = AP_ROW.findall(output)
    if not rows:
        sys.exit(f"no COCO evaluation in the output:\n{output[-4000:]}")
    ap, ap50 = (float(v) for v in rows[-1].split(",")[:2])
    return {"AP": ap, "AP50": ap50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-iters", type=int, default=100)
    parser.add_argument("--train-iters", type=int, default=500)
    parser.add_argument("--output-dir", help="default: a temporary directory")
    args = parser.parse_args()
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="fad_e2e_"))
    train = [
        f"train.max_iter={args.train_iters}",
        f"train.eval_period={args.train_iters}",
        f"train.checkpointer.period={args.train_iters}",
    ]
    times = {}

    search_out = out / "search"
    _, times["search"] = run_phase(
        "search",
        [
            "search_net.py",
            "--config-file",
            "configs/fad/search/fad_fcos_R_18_synthetic.py",
            f"train.max_iter={args.search_iters}",
            f"train.checkpointer.period={args.search_iters}",
            f"train.output_dir={search_out}",
        ],
    )
    genotypes = (search_out / "genotype.log").read_text()
    fad_log, times["fad_train_eval"] = run_phase(
        "fad",
        [
            "train_net.py",
            "--config-file",
            "configs/fad/augment/fad_fcos_R_18_synthetic.py",
            "--genotype-file",
            str(search_out / "genotype.log"),
            *train,
            f"train.output_dir={out / 'fad'}",
        ],
    )
    fcos_log, times["fcos_train_eval"] = run_phase(
        "fcos",
        [
            "train_net.py",
            "--config-file",
            "configs/fcos/fcos_R_18_synthetic.py",
            *train,
            f"train.output_dir={out / 'fcos'}",
        ],
    )
    fad, fcos = coco_ap(fad_log), coco_ap(fcos_log)

    print(f"\nSearched genotypes (box, cls):\n{genotypes}")
    print("| detector | iterations | AP | AP50 | train + eval wall time |")
    print("| --- | --- | --- | --- | --- |")
    for name, res, key in (
        ("FAD (searched)", fad, "fad_train_eval"),
        ("FCOS", fcos, "fcos_train_eval"),
    ):
        print(
            f"| {name} | {args.train_iters} | {res['AP']:.1f} | {res['AP50']:.1f} "
            f"| {times[key]:.0f} s |"
        )
    print(f"search: {args.search_iters} iterations in {times['search']:.0f} s")
    print(f"total wall time: {sum(times.values()):.0f} s; outputs in {out}")
    print(f"fad_ap/fcos_ap = {fad['AP'] / fcos['AP']:.3f}" if fcos["AP"] > 0 else "fcos_ap is 0")
    print(f"fad_ap={fad['AP']:.2f}")
    print(f"fcos_ap={fcos['AP']:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
