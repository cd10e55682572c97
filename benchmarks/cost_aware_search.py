#!/usr/bin/env python
"""Cost-aware search on the synthetic dataset: searches of increasing ``search.cost_weight``,
the FLOPs of the heads they derive, and the AP of those detectors after the same training.

What: for each ``--weights`` value this runs what a user runs, as subprocesses:

1. ``search_net.py`` on configs/fad/search/fad_fcos_R_18_synthetic.py with
   ``search.cost_weight=<w>`` (FLOPs, the default ``search.cost``), ``--search-iters``
   iterations, seed 0;
2. ``train_net.py --genotype-file <search>/genotype.log`` on
   configs/fad/augment/fad_fcos_R_18_synthetic.py, ``--train-iters`` iterations, seed 0, COCO
   evaluation at the end.

Every search and every training has the same budget and seed; only the cost weight differs.
The head FLOPs are fvcore's (1 GFLOP = 1e9 multiply-adds) of the trained detector's head
(``model.head`` of the augment config with the searched genotypes: ResNet-18 FPN-64, op width
64, one cell per tower) on P3-P7 of one 128x128 image, the synthetic data's size, as in
benchmarks/head_cost.py; the towers' figure leaves out the reduce and predictor convs. The
paper's genotypes give the reference row (FLOPs only).

How::

    python benchmarks/cost_aware_search.py                      # about an hour on 2 CPU cores
    python benchmarks/cost_aware_search.py --weights 0 1 --search-iters 20 --train-iters 50

Output: the searched genotypes, a markdown table (cost weight, expected cost at the end of the
search, head and towers GFLOPs, AP, AP50, wall times) and the total wall time. The expected cost
and the AP are the runs' own records (``cost/expected`` and ``bbox/AP`` in their metrics.json:
benchmarks/pipeline.py). Run again with the same ``--output-dir``, it reuses the runs that
finished. Results: docs/BENCHMARKS.md.
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from detectron2.config import LazyConfig, instantiate
from head_cost import STRIDES, count
from omegaconf import DictConfig
from pipeline import AP, AP50, ROOT, Pipeline, Run

from fad.engine.cost import feature_sizes
from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS, Genotype, load_genotype_file

SEARCH_CONFIG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
TRAIN_CONFIG = "configs/fad/augment/fad_fcos_R_18_synthetic.py"
IMAGE = (128, 128)


def set_genotypes(head_cfg: DictConfig, box: Genotype, cls: Genotype) -> None:
    """Give the head config of :data:`TRAIN_CONFIG` these genotypes."""
    head_cfg.box_tower.genotype, head_cfg.cls_tower.genotype = box.to_plain(), cls.to_plain()


def head_gflops(box: Genotype, cls: Genotype) -> Tuple[float, float]:
    """GFLOPs of the trained detector's head with these genotypes, and of its towers alone, on
    P3-P7 of one :data:`IMAGE` image."""
    cfg = LazyConfig.load(str(ROOT / TRAIN_CONFIG)).model.head
    set_genotypes(cfg, box, cls)
    head = instantiate(cfg).eval()
    channels = cfg.input_shape[0].channels
    features = [torch.zeros(1, channels, h, w) for h, w in feature_sizes(IMAGE, STRIDES)]
    figures = count(head, features)
    return figures["gflops"], figures["tower_gflops"]


def expected(search: Run) -> str:
    """The expected cost at the end of a search (none in the paper's search, which has no cost
    table)."""
    cost = search.metrics.get("cost/expected")
    return "-" if cost is None else f"{cost:.3f}"


def ops_of(genotype: Genotype) -> str:
    return ", ".join(op for node in genotype.normal for op, _ in node)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=[0.0, 0.03, 1.0],
        help="search.cost_weight of each search (0 is the paper's search)",
    )
    parser.add_argument("--search-iters", type=int, default=200)
    parser.add_argument("--train-iters", type=int, default=500)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of each run (OMP_NUM_THREADS); one wastes least on a shared machine",
    )
    parser.add_argument("--output-dir", help="default: a temporary directory")
    args = parser.parse_args()
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="fad_cost_"))
    pipeline = Pipeline(out, threads=args.threads)
    start = time.perf_counter()
    rows: List[Dict[str, object]] = []
    for weight in args.weights:
        tag = f"w{weight:g}"
        search = pipeline.search(
            f"search_{tag}",
            SEARCH_CONFIG,
            iters=args.search_iters,
            seed=0,
            overrides=[f"search.cost_weight={weight}"],
        )
        genotype_file = search.output_dir / "genotype.log"
        train = pipeline.train(
            f"train_{tag}",
            TRAIN_CONFIG,
            iters=args.train_iters,
            seed=0,
            genotype_file=genotype_file,
        )
        box, cls = load_genotype_file(str(genotype_file)).values()
        head, towers = head_gflops(box, cls)
        rows.append(
            dict(
                weight=weight,
                box=box,
                cls=cls,
                head=head,
                towers=towers,
                search=search,
                train=train,
            )
        )

    print()
    for r in rows:
        print(f"cost_weight {r['weight']:g}:\n  box: {ops_of(r['box'])}\n  cls: {ops_of(r['cls'])}")
    paper_head, paper_towers = head_gflops(FAD_PAPER_BOX, FAD_PAPER_CLS)
    print()
    print(
        "| search.cost_weight | expected cost at the end | head GFLOPs | towers GFLOPs | AP | AP50 "
        "| search s | train + eval s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        search, train = r["search"], r["train"]
        print(
            f"| {r['weight']:g} | {expected(search)} | {r['head']:.3f} | {r['towers']:.3f} "
            f"| {train.metrics[AP]:.1f} | {train.metrics[AP50]:.1f} | {search.seconds:.0f} "
            f"| {train.seconds:.0f} |"
        )
    print(f"| paper genotypes | - | {paper_head:.3f} | {paper_towers:.3f} | - | - | - | - |")
    print(f"\ntotal wall time: {time.perf_counter() - start:.0f} s; outputs in {out}")


if __name__ == "__main__":
    main()
