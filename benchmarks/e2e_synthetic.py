"""End to end on the synthetic dataset: search, train the searched detector, evaluate; and the
plain detector (FCOS, RetinaNet with ``--detector retinanet``, or Mask R-CNN with detectron2's
mask head with ``--detector mask_rcnn``, whose mask tower is searched) trained and evaluated with
the same budget.

Does the pipeline learn? This runs what a user runs, as subprocesses (FCOS's configs named):

1. ``search_net.py`` on configs/fad/search/fad_fcos_R_18_synthetic.py (``--search-iters``);
2. ``train_net.py --genotype-file <search>/genotype.log`` on
   configs/fad/augment/fad_fcos_R_18_synthetic.py (``--train-iters``), COCO evaluation at the end;
3. ``train_net.py`` on configs/fcos/fcos_R_18_synthetic.py, same iterations, schedule, batch,
   seeds.

Both detectors are ResNet-18 FPN-64 trained from scratch on 128-px images on the CPU; only the
head differs (the FAD towers have one cell each, as in the search: see the augment config). At
this budget one run's AP moves by several points with the seed, so each detector trains with
``--seeds`` seeds (0, 1, ...) and the mean APs are compared. It prints AP and AP50 of every run
(the evaluator's, from the run's metrics.json: benchmarks/pipeline.py) and their means, the wall
time of every phase, and last the lines ``fad_ap=<AP>`` and ``fcos_ap=<AP>`` or
``retinanet_ap=<AP>`` (mean COCO AP, 0-100); for Mask R-CNN also the mask AP
(``fad_mask_ap=``, ``mask_rcnn_mask_ap=``). Run again with the same ``--output-dir``, it reuses
the runs that finished. Results: docs/BENCHMARKS.md.

    python benchmarks/e2e_synthetic.py                  # about 15 minutes on 2 CPU cores
    python benchmarks/e2e_synthetic.py --detector retinanet   # about 27 minutes
    python benchmarks/e2e_synthetic.py --detector mask_rcnn
    python benchmarks/e2e_synthetic.py --train-iters 100 --search-iters 20 --seeds 1  # smoke run
"""

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List

from pipeline import AP, AP50, Pipeline, Run

MASK_AP, MASK_AP50 = "segm/AP", "segm/AP50"

# Per detector: the search config, the FAD training config, the plain baseline and its name.
DETECTORS = {
    "fcos": (
        "configs/fad/search/fad_fcos_R_18_synthetic.py",
        "configs/fad/augment/fad_fcos_R_18_synthetic.py",
        "configs/fcos/fcos_R_18_synthetic.py",
        "FCOS",
    ),
    "retinanet": (
        "configs/fad/search/fad_retinanet_R_18_synthetic.py",
        "configs/fad/augment/fad_retinanet_R_18_synthetic.py",
        "configs/retinanet/retinanet_R_18_synthetic.py",
        "RetinaNet",
    ),
    "mask_rcnn": (
        "configs/fad/search/fad_mask_rcnn_R_18_synthetic.py",
        "configs/fad/augment/fad_mask_rcnn_R_18_synthetic.py",
        "configs/mask_rcnn/mask_rcnn_R_18_synthetic.py",
        "Mask R-CNN",
    ),
}


def mean_of(runs: List[Run], key: str) -> float:
    """The mean of one figure of the runs' ``metrics.json``."""
    return statistics.mean(r.metrics[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--search-iters",
        type=int,
        default=200,
        help="the search config's own length; much shorter searches pick near-random genotypes",
    )
    parser.add_argument("--train-iters", type=int, default=500)
    parser.add_argument(
        "--seeds",
        type=int,
        default=2,
        help="train each detector with seeds 0..N-1 and compare mean APs (one run's AP moves by "
        "several points from seed to seed at this budget)",
    )
    parser.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default="fcos",
        help="the dense detector whose towers are searched, and the plain baseline",
    )
    parser.add_argument("--output-dir", help="default: a temporary directory")
    args = parser.parse_args()
    search_config, fad_config, baseline_config, baseline = DETECTORS[args.detector]
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="fad_e2e_"))
    pipeline = Pipeline(out)
    search = pipeline.search("search", search_config, iters=args.search_iters, seed=0)
    genotype_file = search.output_dir / "genotype.log"
    detectors = {"FAD (searched)": (fad_config, genotype_file), baseline: (baseline_config, None)}
    results: Dict[str, List[Run]] = {name: [] for name in detectors}
    for seed in range(args.seeds):
        for name, (config, genotypes) in detectors.items():
            tag = f"{name.split()[0].lower()}_seed{seed}"
            run = pipeline.train(
                tag, config, iters=args.train_iters, seed=seed, genotype_file=genotypes
            )
            results[name].append(run)

    print(f"\nSearched genotypes:\n{genotype_file.read_text()}")
    keys = [AP, AP50] + ([MASK_AP, MASK_AP50] if args.detector == "mask_rcnn" else [])
    print(f"| detector | seed | iterations | {' | '.join(keys)} | train + eval wall time |")
    print("| --- " * (len(keys) + 4) + "|")
    for name, runs in results.items():
        for seed, r in enumerate(runs):
            figures = " | ".join(f"{r.metrics[k]:.1f}" for k in keys)
            print(f"| {name} | {seed} | {args.train_iters} | {figures} | {r.seconds:.0f} s |")
        figures = " | ".join(f"{mean_of(runs, k):.1f}" for k in keys)
        print(f"| {name} | mean | {args.train_iters} | {figures} | |")
    total = search.seconds + sum(r.seconds for runs in results.values() for r in runs)
    print(f"search: {args.search_iters} iterations in {search.seconds:.0f} s")
    print(f"total wall time: {total:.0f} s; outputs in {out}")
    fad_ap = mean_of(results["FAD (searched)"], AP)
    baseline_ap = mean_of(results[baseline], AP)
    key = f"{args.detector}_ap"
    print(f"fad_ap/{key} = {fad_ap / baseline_ap:.3f}" if baseline_ap > 0 else f"{key} is 0")
    print(f"fad_ap={fad_ap:.2f}")
    print(f"{key}={baseline_ap:.2f}")
    if args.detector == "mask_rcnn":
        print(f"fad_mask_ap={mean_of(results['FAD (searched)'], MASK_AP):.2f}")
        print(f"mask_rcnn_mask_ap={mean_of(results[baseline], MASK_AP):.2f}")


if __name__ == "__main__":
    main()
