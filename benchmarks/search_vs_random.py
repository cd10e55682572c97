"""Does the search beat chance? Searched towers against towers drawn at random from the same space.

A search earns its cost only if what it finds beats architectures drawn at random from its search
space (Li and Talwalkar 2019; Yu et al. 2020). This runs, as subprocesses, on the synthetic data:

0. with ``--pretrain-iters`` N > 0 (default 1000): plain FCOS (configs/fcos/fcos_R_18_synthetic.py)
   for N iterations; its backbone, frozen (``model.backbone.bottom_up.freeze_at=5``), is where
   every search and training below starts, as the paper's start from an ImageNet-pretrained
   backbone: the towers are then what differs between runs, not how a backbone trained from
   scratch in a few hundred iterations happened to turn out;
1. ``search_net.py`` on configs/fad/search/fad_fcos_R_18_synthetic.py with ``--search-seeds``
   seeds (0, 1, ...); with ``--selections perturbation``, also ``search_net.py --eval-only
   search.selection=perturbation`` on each search's final checkpoint (``search0_pt``, ...);
2. ``python -m fad.genotypes random --seed S`` for ``--random`` seeds (0, 1, ...): box and class
   towers drawn uniformly from the same space;
3. ``train_net.py`` on configs/fad/augment/fad_fcos_R_18_synthetic.py with every searched and
   random genotype.log, and on configs/fcos/fcos_R_18_synthetic.py (plain FCOS): the same
   iterations, schedule, batch and training seeds (``--train-seeds``: 0, 1, ...) for all, COCO
   evaluation at the end.

It prints every run's AP (the evaluator's, from the run's metrics.json: benchmarks/pipeline.py),
a table of each genotype's mean AP over the training seeds with its rank among the random
genotypes, the mean and standard deviation of each group, how far each search
decided (the spread of its final softmax weights), how much the searched genotypes agree
(edges and ops in common, per tower, against the chance level); then whether the task rewards
architecture at all (the variance of one run's AP over the random genotypes split into between
genotypes and within, over training seeds, with a permutation test), and per selection the
margin of the searched over the random towers with a 90% bootstrap interval; last the lines
``searched_ap_<selection>=``, ``random_ap_mean=``, ``random_ap_std=``, ``fcos_ap=`` (COCO AP,
0-100). Results: docs/BENCHMARKS.md.

Runs go ``--jobs`` at a time, each with ``--threads`` torch threads (on a 2-core machine, two
one-thread runs at a time use both cores without the stalls of threads that lose their core).
A run whose ``result.json`` in ``--output-dir`` records the same command is not run again: with
the same ``--output-dir``, a second invocation with other ``--search-opts`` (a search setting to
try) trains only the new searches' genotypes and compares them with the same random and FCOS runs
(``--searches-only`` runs the new searches and their trainings alone, e.g. while the baselines
still train in another invocation; run again without it to compare).

    python benchmarks/search_vs_random.py --search-seeds 4 --random 6 --train-seeds 3 \
        --test-images 512 --output-dir output/search_vs_random   # 1.5-2 hours on 2 shared cores
    python benchmarks/search_vs_random.py --search-iters 4 --train-iters 20 --random 2 \
        --train-seeds 2 --pretrain-iters 10 --selection-batches 1   # smoke run
    python benchmarks/search_vs_random.py --output-dir output/search_vs_random \
        --search-opts search.warmup_iters=50   # one more search setting, against the same baselines
"""

import argparse
import json
import os
import platform
import random
import re
import statistics
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from pipeline import AP, AP50, Pipeline, Run

from fad.genotypes import load_genotype_file, primitives

SEARCH_CFG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
AUGMENT_CFG = "configs/fad/augment/fad_fcos_R_18_synthetic.py"
FCOS_CFG = "configs/fcos/fcos_R_18_synthetic.py"
SEARCH_ITERS = 200  # train.max_iter of SEARCH_CFG
NUM_OPS = len(primitives()) - 1  # candidates other than 'none' (the configs' 10-op space)
#: A detector to train: its config and its genotype.log (None: plain FCOS).
Detector = Tuple[str, Optional[Path]]
ALPHAS = re.compile(r"\.alphas\.\d+$")  # a node's (edges, candidates) alphas in a state dict


def read_genotypes(path: Path) -> Dict[str, List[tuple]]:
    """Edges ``(node, source, op)`` of the box and class lines of a genotype.log."""
    towers = load_genotype_file(str(path))
    return {
        tower: [(i, src, op) for i, node in enumerate(g.normal) for op, src in node]
        for tower, g in towers.items()
    }


def agreement(a: List[tuple], b: List[tuple]) -> Dict[str, int]:
    """Edges ``(node, source)`` and ops ``(node, source, op)`` two genotypes have in common."""
    return {
        "edges": len({e[:2] for e in a} & {e[:2] for e in b}),
        "ops": len(set(a) & set(b)),
        "of": len(a),
    }


def chance_agreement(num_nodes: int = 3) -> Dict[str, float]:
    """Expected edges and ops in common between two genotypes drawn uniformly at random.

    Node i keeps 2 of its 2 + i sources: a given source is kept with probability 2 / (2 + i), so
    two draws share 4 / (2 + i) sources on average; a shared edge has the same op 1 / NUM_OPS of
    the time.
    """
    edges = sum(4 / (2 + i) for i in range(num_nodes))
    return {"edges": edges, "ops": edges / NUM_OPS}


def decision(search_dir: Path) -> Dict[str, float]:
    """How far a search decided: the lowest and highest softmax weight of its final alphas over
    every edge and candidate, and the median lead of an edge's best candidate over its second."""
    state = torch.load(search_dir / "model_final.pth", map_location="cpu")["model"]
    weights = torch.cat([v.softmax(-1) for k, v in state.items() if ALPHAS.search(k)])
    best, second = weights.topk(2, dim=-1).values.unbind(-1)
    return {
        "min": weights.min().item(),
        "max": weights.max().item(),
        "lead": (best - second).median().item(),
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def variance_decomposition(aps: Dict[str, List[float]], *, permutations: int = 10000) -> dict:
    """One-way random-effects analysis of AP over genotypes x training seeds.

    Args:
        aps: per genotype, its AP per training seed (the same number of seeds for each, >= 2).
        permutations: shuffles of the APs across genotypes for the F statistic's p-value.

    Returns:
        ``between`` and ``within``: the genotype and the training-seed variance components
        (AP^2; ``between`` = (MSB - MSW) / seeds, at least 0); ``f``: MSB / MSW; ``p``: the share
        of permutations with an F at least as large (no genotype effect: about uniform);
        ``icc``: between / (between + within), the share of one run's variance that is the
        genotype's.
    """
    groups = list(aps.values())
    k = len(groups[0])

    def f_stat(values: List[List[float]]) -> Tuple[float, float, float]:
        msb = k * statistics.variance([statistics.mean(g) for g in values])
        msw = statistics.mean(statistics.variance(g) for g in values)
        return msb / msw if msw > 0 else float("inf"), msb, msw

    f, msb, msw = f_stat(groups)
    flat = [ap for g in groups for ap in g]
    rng = random.Random(0)
    higher = 0
    for _ in range(permutations):
        rng.shuffle(flat)
        higher += f_stat([flat[i : i + k] for i in range(0, len(flat), k)])[0] >= f
    between = max(0.0, (msb - msw) / k)
    return {
        "between": between,
        "within": msw,
        "f": f,
        "p": (1 + higher) / (1 + permutations),
        "icc": between / (between + msw) if between + msw > 0 else 0.0,
    }


def bootstrap_margin(
    searched: List[List[float]], baseline: List[List[float]], *, reps: int = 10000
) -> Tuple[float, float]:
    """90% percentile interval of mean(searched) - mean(baseline) AP by a two-level bootstrap:
    genotypes drawn with replacement within each group, then each drawn genotype's training
    seeds with replacement (both are sources of the difference's noise).

    Args:
        searched, baseline: per genotype, its AP per training seed.
    """
    rng = random.Random(0)

    def draw(group: List[List[float]]) -> float:
        genotypes = [rng.choice(group) for _ in group]
        return statistics.mean(statistics.mean(rng.choices(g, k=len(g))) for g in genotypes)

    margins = sorted(draw(searched) - draw(baseline) for _ in range(reps))
    return margins[int(0.05 * reps)], margins[int(0.95 * reps) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-seeds", type=int, default=2, help="searches: seeds 0..N-1")
    parser.add_argument("--random", type=int, default=4, help="random genotype pairs: seeds 0..N-1")
    parser.add_argument(
        "--train-seeds", type=int, default=2, help="every detector trains with seeds 0..N-1"
    )
    parser.add_argument(
        "--search-iters", type=int, default=SEARCH_ITERS, help="default: the search config's own"
    )
    parser.add_argument("--train-iters", type=int, default=500)
    parser.add_argument(
        "--pretrain-iters",
        type=int,
        default=1000,
        help="iterations of the plain FCOS whose backbone every search and training starts "
        "from, frozen (0: every run trains its backbone from scratch)",
    )
    parser.add_argument(
        "--selections",
        nargs="+",
        choices=("alpha", "perturbation"),
        default=["alpha", "perturbation"],
        help="search.selection of the searched genotypes (perturbation: of the same searches)",
    )
    parser.add_argument(
        "--test-images",
        type=int,
        default=0,
        help="also evaluate every trained detector on this many new synthetic images (seed 3), "
        "and compare on that AP: a lower-variance score than the config's 64 validation images",
    )
    parser.add_argument(
        "--selection-batches",
        type=int,
        default=4,
        help="search.selection_batches of the perturbation selection (the config's 8 take twice "
        "as long)",
    )
    parser.add_argument(
        "--search-opts",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of the searches (a setting to try); they name the search directories",
    )
    parser.add_argument(
        "--searches-only",
        action="store_true",
        help="search and train the searched genotypes only (e.g. a setting to try while the "
        "baselines of the same --output-dir still train); run again without it to compare",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--output-dir", help="default: a temporary directory")
    args = parser.parse_args()
    if min(args.search_seeds, args.random, args.train_seeds, args.jobs, args.threads) < 1:
        parser.error("--search-seeds, --random, --train-seeds, --jobs and --threads must be >= 1")
    if args.pretrain_iters < 0:
        parser.error("--pretrain-iters must be >= 0")
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="fad_search_vs_random_")).resolve()
    pipeline = Pipeline(out, threads=args.threads)
    load = os.getloadavg()
    start = time.perf_counter()

    # The synthetic splits, generated once before runs start side by side.
    pipeline.run(
        "datasets",
        [
            "-c",
            "import fad.data; from fad.data.datasets import SYNTHETIC_SPLITS, prepare_datasets; "
            "prepare_datasets(list(SYNTHETIC_SPLITS))",
        ],
    )
    overrides: List[str] = []  # of every search and training
    if args.pretrain_iters:
        pretrained = pipeline.train(
            "pretrain", FCOS_CFG, iters=args.pretrain_iters, seed=0
        ).output_dir
        backbone = pretrained / "backbone.pth"
        if not backbone.is_file():  # another invocation's runs may be reading it
            state = torch.load(pretrained / "model_final.pth", map_location="cpu")["model"]
            kept = {k: v for k, v in state.items() if k.startswith("backbone.")}
            torch.save({"model": kept}, backbone)
        # freeze_at=5: the stem and all four ResNet stages, with frozen BatchNorm; the FPN learns.
        overrides = [f"train.init_checkpoint={backbone}", "model.backbone.bottom_up.freeze_at=5"]
    random_seeds = range(0 if args.searches_only else args.random)
    for seed in random_seeds:
        genotype_file = out / f"random{seed}" / "genotype.log"
        pipeline.run(
            f"random{seed}/draw",
            ["-m", "fad.genotypes", "random", "--seed", str(seed), "-o", str(genotype_file)],
        )
    # A search's directory names a setting other than the config's, so that settings tried with
    # one --output-dir stay apart; an override's path can hold no '=' (search.warmup_iters=50
    # names search0_search.warmup_iters-50).
    setting = "".join("_" + re.sub(r"[^\w.]", "-", opt) for opt in args.search_opts)
    if args.search_iters != SEARCH_ITERS:
        setting = f"_{args.search_iters}it{setting}"
    search_seeds = {f"search{seed}{setting}": seed for seed in range(args.search_seeds)}
    # The searched genotypes: per search, one per selection ("_pt": perturbation).
    suffix = {"alpha": "", "perturbation": "_pt"}
    searches = {name + suffix[sel]: sel for name in search_seeds for sel in args.selections}

    def train_run(name: str, detector: Detector, seed: int) -> Run:
        config, genotype_file = detector
        return pipeline.train(
            f"{name}/train_seed{seed}",
            config,
            iters=args.train_iters,
            seed=seed,
            genotype_file=genotype_file,
            overrides=overrides,
        )

    def genotype_config(name: str) -> Detector:
        # search_net.py --eval-only names its file after the checkpoint.
        stem = "genotype_model_final" if name.endswith("_pt") else "genotype"
        return AUGMENT_CFG, out / name / f"{stem}.log"

    def select(name: str) -> None:
        """Perturbation-based selection on search ``name``'s final checkpoint."""
        pipeline.run(
            f"{name}_pt",
            [
                "search_net.py",
                "--config-file",
                SEARCH_CFG,
                "--eval-only",
                f"train.init_checkpoint={out / name / 'model_final.pth'}",
                "search.selection=perturbation",
                f"search.selection_batches={args.selection_batches}",
                *args.search_opts,
                *overrides[1:],  # not the backbone's init_checkpoint: the search's own
                f"train.output_dir={out / name}_pt",
            ],
        )

    search_seconds: Dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:

        def search(name: str, seed: int) -> Dict[str, List[Future]]:
            """Search (and select by perturbation); then queue the trainings of the searched
            genotypes, one run per seed; returns them by genotype."""
            search_seconds[name] = pipeline.search(
                name,
                SEARCH_CFG,
                iters=args.search_iters,
                seed=seed,
                overrides=[*args.search_opts, *overrides],
            ).seconds
            if "perturbation" in args.selections:
                select(name)
            return {
                genotype: [
                    pool.submit(train_run, genotype, genotype_config(genotype), s)
                    for s in range(args.train_seeds)
                ]
                for genotype in (name + suffix[sel] for sel in args.selections)
            }

        # One pool task per run, so that no worker idles while another works through a queue of
        # its own: the searches first, then the baselines' trainings (the random towers, slower
        # than FCOS, first), and each search's trainings join the queue when it ends; the short
        # runs come last and the workers finish together.
        searching = [pool.submit(search, name, seed) for name, seed in search_seeds.items()]
        baselines = {f"random{seed}": genotype_config(f"random{seed}") for seed in random_seeds}
        if not args.searches_only:
            baselines["fcos"] = (FCOS_CFG, None)
        training = {
            name: [pool.submit(train_run, name, detector, s) for s in range(args.train_seeds)]
            for name, detector in baselines.items()
        }
        try:
            runs = {
                name: [t.result() for t in ts] for f in searching for name, ts in f.result().items()
            }
            runs.update({name: [f.result() for f in fs] for name, fs in training.items()})
        except SystemExit:  # a run failed (Pipeline.run exits)
            pool.shutdown(wait=False, cancel_futures=True)  # the running ones still finish
            raise
        if args.test_images:
            # The same data for every detector, generated once, before the evaluations start.
            test = f"test{args.test_images}"
            data = out / test / "data"
            pipeline.run(
                test,
                ["-m", "fad.data.synthetic", "--output-dir", str(data)]
                + ["--num-images", str(args.test_images), "--seed", "3"],
            )
            coco = [f"fad_{test}", str(data / "annotations.json"), str(data / "images")]

            def evaluate(run: Run) -> float:
                tag = f"{run.output_dir.relative_to(out)}/eval_{test}"
                pipeline.run(
                    tag, ["benchmarks/evaluate_run.py", str(run.output_dir), "--coco"] + coco
                )
                results = json.loads((run.output_dir / f"eval_fad_{test}.json").read_text())
                return results[AP]

            evaluations = {n: [pool.submit(evaluate, r) for r in rs] for n, rs in runs.items()}
            ap_runs = {n: [f.result() for f in fs] for n, fs in evaluations.items()}
        else:
            ap_runs = {name: [r.metrics[AP] for r in rs] for name, rs in runs.items()}
    wall = time.perf_counter() - start

    mean_ap = {name: statistics.mean(aps) for name, aps in ap_runs.items()}
    random_names = [f"random{seed}" for seed in random_seeds]
    random_aps = [mean_ap[n] for n in random_names]

    def rank(name: str) -> str:
        better = sum(ap > mean_ap[name] for ap in random_aps)
        return f"{1 + better} of {1 + len(random_aps)}"

    seeds = ", ".join(str(s) for s in range(args.train_seeds))
    start_from = (
        f"the backbone of a {args.pretrain_iters}-iteration plain FCOS, frozen"
        if args.pretrain_iters
        else "scratch"
    )
    print(f"\nEvery detector: {args.train_iters} iterations from {start_from}, seeds {seeds}.")
    print(f"Searches: {args.search_iters} iterations, overrides: {args.search_opts or 'none'}.")
    scored = f"{args.test_images} test images (seed 3)" if args.test_images else "the val split"
    print(f"AP: COCO box AP on {scored}; AP50 on the val split (64 images).\n")
    print(
        "| detector | AP per training seed | mean AP | mean AP50 | rank among random "
        "| search (selection), train + eval s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rs in runs.items():
        aps = ", ".join(f"{ap:.1f}" for ap in ap_runs[name])
        ap50 = statistics.mean(r.metrics[AP50] for r in rs)
        shown = rank(name) if name in searches and random_aps else ""
        seconds = ", ".join(f"{r.seconds:.0f}" for r in rs)
        if name in search_seconds:
            seconds = f"{search_seconds[name]:.0f}; {seconds}"
        print(f"| {name} | {aps} | {mean_ap[name]:.1f} | {ap50:.1f} | {shown} | {seconds} |")

    groups = {
        f"searched ({sel})": [n for n, s in searches.items() if s == sel] for sel in args.selections
    }
    groups["random"] = random_names
    fcos_aps = ap_runs.get("fcos", [])
    print("\n| group | genotypes | mean AP | std AP |")
    print("| --- | --- | --- | --- |")
    for group, names in groups.items():
        if names:
            aps = [mean_ap[n] for n in names]
            print(f"| {group} | {len(aps)} | {statistics.mean(aps):.2f} | {std(aps):.2f} |")
    if fcos_aps:
        print(
            f"| FCOS (std over training seeds) | - | {statistics.mean(fcos_aps):.2f} "
            f"| {std(fcos_aps):.2f} |"
        )

    print(
        f"\nFinal softmax weights of the searches (uniform: 1/{NUM_OPS + 1} = "
        f"{1 / (NUM_OPS + 1):.3f}); lead: an edge's best candidate over its second, median:"
    )
    for name in search_seeds:
        d = decision(out / name)
        print(f"  {name}: {d['min']:.3f} to {d['max']:.3f}, lead {d['lead']:.3f}")

    names = list(searches)
    if len(names) > 1:
        chance = chance_agreement()
        print("\nAgreement of the searched genotypes (edges: (node, source); ops: with its op):")
        genotypes = {n: read_genotypes(genotype_config(n)[1]) for n in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for tower in ("box", "cls"):
                    agree = agreement(genotypes[a][tower], genotypes[b][tower])
                    print(
                        f"  {a} ~ {b}, {tower} tower: {agree['edges']} of {agree['of']} edges, "
                        f"{agree['ops']} of {agree['of']} ops in common (chance: "
                        f"{chance['edges']:.2f} edges, {chance['ops']:.2f} ops)"
                    )
    reused = sum(r.reused for rs in runs.values() for r in rs)
    print(
        f"\nwall time: {wall:.0f} s ({wall / 60:.1f} min), {args.jobs} runs at a time, "
        f"{args.threads} thread(s) each; {reused} training run(s) reused; outputs in {out}"
    )
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs; load "
        f"average at start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f}"
    )
    for group, names in groups.items():
        if group != "random" and names:
            key = group.replace("searched (", "searched_ap_").rstrip(")")
            print(f"{key}={statistics.mean(mean_ap[n] for n in names):.2f}")
    if args.searches_only or not random_names:
        return
    if args.train_seeds > 1 and len(random_names) > 1:
        v = variance_decomposition({n: ap_runs[n] for n in random_names})
        print(
            f"\nvariance of one run's AP over the random genotypes: between genotypes "
            f"{v['between']:.2f}, within (training seeds) {v['within']:.2f} AP^2; F = {v['f']:.2f} "
            f"(permutation p = {v['p']:.3f}); the genotype's share {v['icc']:.2f}"
        )
    for group, names in groups.items():
        if group == "random" or not names:
            continue
        margin = statistics.mean(mean_ap[n] for n in names) - statistics.mean(random_aps)
        low, high = bootstrap_margin(
            [ap_runs[n] for n in names], [ap_runs[n] for n in random_names]
        )
        verdict = "beats" if low > 0 else "does not beat"
        print(
            f"{group} - random = {margin:+.2f} AP, 90% bootstrap interval [{low:+.2f}, "
            f"{high:+.2f}]: the search {verdict} chance"
        )
    print(f"random_ap_mean={statistics.mean(random_aps):.2f}")
    print(f"random_ap_std={std(random_aps):.2f}")
    if fcos_aps:
        print(f"fcos_ap={statistics.mean(fcos_aps):.2f}")


if __name__ == "__main__":
    main()
