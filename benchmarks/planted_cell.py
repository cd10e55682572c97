"""Does the search find a planted cell? A teacher tower of known genotype, a search imitating it.

The search mechanism (sharing mixed op, :class:`fad.nas.architect.Architect`, derivation) is
measured here apart from any detection task: a *teacher* :class:`DerivedTower` of a genotype drawn
with :func:`fad.genotypes.random_genotype` (one per ``--seeds`` seed) and fixed random weights
maps random inputs to targets; a :class:`SearchTower` over the same space and widths learns to
reproduce them (MSE) with the project's bilevel loop: a weight step (Adam on
:func:`weight_parameters`) on one stream of batches, then an alpha step (the ``Architect``, first
order, Adam on the alphas as in configs/common/search.py) on another. The cell is then derived
three ways and compared with the teacher's: ``alpha``, by alpha magnitude (``tower.genotype()``,
the paper's); by perturbation (:func:`fad.nas.selection.perturbation_genotype`, DARTS-PT),
``pt_static`` with every removal measured on the supernet as searched, and ``pt_progressive``
as in DARTS-PT, each decision fixed before the next is measured, ``tune_steps`` weight steps
after each.

The task is well-posed:

- **The teacher is exactly representable by the supernet.** The tower is called with two
  independent inputs (the class-tower wiring, ``tower(s0, s1)``): with the box-tower wiring both
  cell inputs are one tensor, sources 0 and 1 would be interchangeable and "which edge" would
  have no answer. The teacher's bottleneck 1x1 convs have zero biases (the search edges' 1x1
  convs have none). Then :func:`embed_teacher` gives the supernet the teacher's function: each
  teacher edge's alphas select its op alone (softmax weight 1: the others' alphas are -inf), every
  other edge selects ``none`` alone (it adds nothing), and the weights are copied: the edge's 1x1
  convs, and the op's layers into the candidate's layers of the shared chain (an op ``B B dil``
  is chain layers L1, L2 and the dil layer on L2; the 1x1 "decouple" conv of ``B`` and ``B B``
  becomes the identity; docs/METHOD.md section 3). Sharing does not tie anything here, since
  only one candidate of an edge is used. tests/nas/test_planted_cell.py checks the two outputs
  agree. A supernet can only *approach* this point (softmax weights are never exactly 0 or 1).
- **The genotype matters.** A derived tower of the teacher's genotype, trained from a fresh
  initialisation the same way (same steps, learning rate and training batches), is compared with
  derived towers of ``--random`` random genotypes: the ``fit_teacher`` and ``fit_random`` columns,
  MSE relative to the variance of the teacher's output on held-out batches (``fit found``: a
  derived tower of the selected genotype trained the same way; ``supernet``: the searched
  supernet itself).

Recovery is counted on the teacher's edges (``num_nodes`` x 2): an edge (node, source) is
recovered if the derived node reads that source, its op if the edge is recovered with the
teacher's op name, its family if it is recovered with the teacher's base type (std/sinSep),
with the teacher's layer stack but for the base type (``shape``: depth and dilation), or with
an op of the teacher's receptive field. Chance is exact: a random genotype (as
``random_genotype`` draws it) keeps a given edge of node i with probability 2 / (2 + i), then
each of the 10 ops with probability 1/10.

    OMP_NUM_THREADS=1 python benchmarks/planted_cell.py                  # 3 teachers, ~13 min
    OMP_NUM_THREADS=1 python benchmarks/planted_cell.py --seeds 0 --steps 60 --random 1  # smoke

It prints a markdown table (one row per teacher seed and selection) and ``key=value`` summary
lines (means over the seeds). Results: docs/BENCHMARKS.md, "Does the search find a planted cell?".
"""

import argparse
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fad.genotypes import BASE_TYPES, NONE, Genotype, op_layers, primitives, random_genotype
from fad.nas.architect import Architect
from fad.nas.derived_cells import DerivedTower
from fad.nas.search_cells import SearchTower, arch_parameters, weight_parameters
from fad.nas.selection import perturbation_genotype

#: How far each layer type widens the receptive field (a 3x3 kernel at dilation 1, 2 or 3).
_RF_GROWTH = {"std": 2, "sinSep": 2, "dil": 4, "dil3": 6}
#: The metrics of :func:`recovery`, in table order.
METRICS = ("edges", "ops", "base", "shape", "rf")


@dataclass(frozen=True)
class Setup:
    """Sizes and schedule of one planted-cell run.

    Attributes:
        channels: node and op width (a multiple of 32, for GroupNorm(32)).
        num_nodes: intermediate nodes of the cell.
        size: H = W of the random inputs.
        batch: images per batch.
        steps: weight steps (and as many alpha steps).
        lr: Adam's learning rate for the weights.
        arch_lr: Adam's learning rate for the alphas.
        tune_steps: weight steps of fine-tuning after each decision of the perturbation
            selection (the paper's progressive form).
    """

    channels: int = 32
    num_nodes: int = 3
    size: int = 16
    batch: int = 8
    steps: int = 300
    lr: float = 3e-3
    arch_lr: float = 3e-2
    tune_steps: int = 10


def shape(op: str) -> Tuple[str, ...]:
    """An op's layer stack with its base type left out (its depth and dilation), e.g. ``('B',
    'B', 'dil')`` for both ``std_conv_3x3_x2+dil_conv_3x3`` and its sinSep twin."""
    return tuple("B" if layer in BASE_TYPES else layer for layer in op_layers(op))


def receptive_field(op: str) -> int:
    """The receptive field (pixels per side) of an op name's layer stack, e.g. 7 for std, dil."""
    return 1 + sum(_RF_GROWTH[layer] for layer in op_layers(op))


def make_teacher(seed: int, setup: Setup) -> DerivedTower:
    """A one-cell derived tower of ``random_genotype(seed=seed)``, random fixed weights, zero
    bottleneck biases (so the supernet can represent it: see the module's docstring)."""
    torch.manual_seed(seed)
    teacher = DerivedTower(
        genotype=random_genotype(seed=seed, num_nodes=setup.num_nodes),
        in_channels=setup.channels,
        op_channels=setup.channels,
        num_cells=1,
        num_nodes=setup.num_nodes,
    )
    with torch.no_grad():
        for node in teacher.cells[0].dag:
            for edge in node:
                edge[0].bias.zero_()
                edge[-1].bias.zero_()
    return teacher.requires_grad_(False)


def make_supernet(setup: Setup) -> SearchTower:
    """A one-cell search tower of the teacher's widths."""
    return SearchTower(
        in_channels=setup.channels,
        op_channels=setup.channels,
        num_cells=1,
        num_nodes=setup.num_nodes,
    )


@torch.no_grad()
def embed_teacher(supernet: SearchTower, teacher: DerivedTower) -> None:
    """Give ``supernet`` the teacher's function: its alphas select the teacher's ops and edges
    alone, its weights are the teacher's (see the module's docstring)."""
    names = primitives(dil3=supernet.dil3)
    cell, t_cell = supernet.cells[0], teacher.cells[0]
    for i, alpha in enumerate(supernet.alphas):
        alpha.fill_(-float("inf"))
        alpha[:, names.index(NONE)] = 0.0  # an edge the teacher does not have adds nothing
        for (op, src), t_edge in zip(teacher.genotype.normal[i], t_cell.dag[i]):
            alpha[src] = -float("inf")
            alpha[src, names.index(op)] = 0.0
            pre, mixed, post = cell.dag[i][src]
            pre.weight.copy_(t_edge[0].weight)
            post.weight.copy_(t_edge[2].weight)
            layers = list(t_edge[1])
            chain = mixed.chains[BASE_TYPES.index(op_layers(op)[0])]
            _, producer, reads = next(c for c in chain.candidates if c[0] == names.index(op))
            for k in range(reads):
                chain.layers[k].load_state_dict(layers[k].state_dict())
            if producer.startswith("decouple"):
                chain.get_submodule(producer).weight.copy_(
                    torch.eye(supernet.op_channels)[:, :, None, None]
                )
            else:  # a dil layer, or L3 (``B B B`` reads L2 and is L3 itself)
                chain.get_submodule(producer).load_state_dict(layers[-1].state_dict())


def batches(seed: int, setup: Setup) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """An endless stream of (s0, s1) random input pairs, (N, C, H, W) each, from one seed."""
    g = torch.Generator().manual_seed(seed)
    shape = (setup.batch, setup.channels, setup.size, setup.size)
    while True:
        yield torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def _loss(model: nn.Module, teacher: nn.Module, inputs) -> torch.Tensor:
    with torch.no_grad():
        target = teacher(*inputs)
    return F.mse_loss(model(*inputs), target)


def relative_mse(model: nn.Module, teacher: nn.Module, setup: Setup, *, seed: int = 999) -> float:
    """MSE of ``model`` against the teacher on 4 held-out batches, over the targets' variance."""
    errors, variances = [], []
    with torch.no_grad():
        for _, inputs in zip(range(4), batches(seed, setup)):
            target = teacher(*inputs)
            errors.append(F.mse_loss(model(*inputs), target).item())
            variances.append(target.var().item())
    return statistics.mean(errors) / statistics.mean(variances)


def search(
    teacher: DerivedTower, setup: Setup, *, seed: int
) -> Tuple[SearchTower, Callable[[], torch.Tensor], Callable[[], None]]:
    """The bilevel search that imitates the teacher.

    Returns:
        The trained supernet; a validation-loss closure (two held-out batches, the same at every
        call) for the perturbation selection; and the paper's fine-tuning between its
        decisions: ``setup.tune_steps`` more weight steps on the training stream.
    """
    torch.manual_seed(seed)
    supernet = make_supernet(setup)
    weights, alphas = weight_parameters(supernet), arch_parameters(supernet)
    w_optim = torch.optim.Adam(weights, lr=setup.lr)
    a_optim = torch.optim.Adam(alphas, lr=setup.arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    architect = Architect(arch_parameters=alphas, weight_parameters=weights)
    train, val = batches(2 * seed, setup), batches(2 * seed + 1, setup)
    for _ in range(setup.steps):
        w_optim.zero_grad()
        _loss(supernet, teacher, next(train)).backward()
        w_optim.step()
        for a in alphas:
            a.grad = None  # the weight step's backward reached the alphas too
        batch = next(val)
        architect.step(val_loss_fn=lambda b=batch: _loss(supernet, teacher, b))
        a_optim.step()
    held_out = [b for _, b in zip(range(2), batches(10_000 + seed, setup))]

    def val_loss() -> torch.Tensor:
        return torch.stack([_loss(supernet, teacher, b) for b in held_out]).mean()

    def tune() -> None:
        for _ in range(setup.tune_steps):
            w_optim.zero_grad()
            _loss(supernet, teacher, next(train)).backward()
            w_optim.step()
        for p in supernet.parameters():
            p.grad = None

    return supernet, val_loss, tune


def fit_derived(genotype: Genotype, teacher: DerivedTower, setup: Setup, *, seed: int) -> float:
    """Train a fresh derived tower of ``genotype`` on the teacher as the search trains its
    weights (the same steps, lr and training batches); its relative held-out MSE."""
    torch.manual_seed(seed)
    student = DerivedTower(
        genotype=genotype,
        in_channels=setup.channels,
        op_channels=setup.channels,
        num_cells=1,
        num_nodes=setup.num_nodes,
    )
    optim = torch.optim.Adam(student.parameters(), lr=setup.lr)
    for _, inputs in zip(range(setup.steps), batches(2 * seed, setup)):
        optim.zero_grad()
        _loss(student, teacher, inputs).backward()
        optim.step()
    return relative_mse(student, teacher, setup)


def recovery(found: Genotype, teacher: Genotype) -> Dict[str, float]:
    """Share of the teacher's edges that ``found`` has: the edge, with the teacher's op, with
    its base type, with its shape, with its receptive field (see the module's docstring)."""
    hits = dict.fromkeys(METRICS, 0)
    for t_node, f_node in zip(teacher.normal, found.normal):
        ops = {src: op for op, src in f_node}
        for op, src in t_node:
            if src not in ops:
                continue
            hits["edges"] += 1
            hits["ops"] += ops[src] == op
            hits["base"] += op_layers(ops[src])[0] == op_layers(op)[0]
            hits["shape"] += shape(ops[src]) == shape(op)
            hits["rf"] += receptive_field(ops[src]) == receptive_field(op)
    n = sum(len(node) for node in teacher.normal)
    return {k: v / n for k, v in hits.items()}


def chance(teacher: Genotype) -> Dict[str, float]:
    """The expected :func:`recovery` of a genotype drawn by ``random_genotype``, exactly."""
    ops = primitives()[:-1]

    def base(op: str) -> str:
        return op_layers(op)[0]

    expected = dict.fromkeys(METRICS, 0.0)
    for i, node in enumerate(teacher.normal):
        keep = 2 / (2 + i)  # two distinct sources of 2 + i
        for op, _ in node:
            expected["edges"] += keep
            expected["ops"] += keep / len(ops)
            for metric, family in (("base", base), ("shape", shape), ("rf", receptive_field)):
                expected[metric] += keep * sum(family(o) == family(op) for o in ops) / len(ops)
    n = sum(len(node) for node in teacher.normal)
    return {k: v / n for k, v in expected.items()}


def run_teacher(seed: int, setup: Setup, *, num_random: int) -> Dict[str, object]:
    """Everything the table reports about one teacher."""
    teacher = make_teacher(seed, setup)
    start = time.perf_counter()
    supernet, val_loss, tune = search(teacher, setup, seed=seed)
    search_s = time.perf_counter() - start
    found = {"alpha": supernet.genotype()}
    # Measured on the supernet as searched first: the progressive form's tuning moves its weights.
    static = perturbation_genotype(supernet, val_loss_fn=val_loss)
    found["pt_static"] = static.genotype
    fit_supernet = relative_mse(supernet, teacher, setup)
    selection = perturbation_genotype(supernet, val_loss_fn=val_loss, tune=tune)
    found["pt_progressive"] = selection.genotype
    fit_random = [
        fit_derived(random_genotype(seed=1000 * seed + r + 1), teacher, setup, seed=seed)
        for r in range(num_random)
    ]
    return {
        "seed": seed,
        "teacher": teacher.genotype,
        "found": found,
        "recovery": {k: recovery(g, teacher.genotype) for k, g in found.items()},
        "chance": chance(teacher.genotype),
        "fit_supernet": fit_supernet,
        "fit_teacher": fit_derived(teacher.genotype, teacher, setup, seed=seed),
        "fit_found": {k: fit_derived(g, teacher, setup, seed=seed) for k, g in found.items()},
        "fit_random": statistics.mean(fit_random) if fit_random else float("nan"),
        "search_s": search_s,
        "selections": {"pt_static": static, "pt_progressive": selection},
    }


def _table(results: Sequence[Dict[str, object]]) -> List[str]:
    head = ["seed", "selection", *METRICS, "fit found", "fit teacher", "fit random", "supernet"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for sel in r["found"]:
            rec, ch = r["recovery"][sel], r["chance"]
            cells = [f"{rec[m]:.2f} ({ch[m]:.2f})" for m in METRICS]
            lines.append(
                f"| {r['seed']} | {sel} | "
                + " | ".join(cells)
                + f" | {r['fit_found'][sel]:.3f} | {r['fit_teacher']:.3f} | "
                f"{r['fit_random']:.3f} | {r['fit_supernet']:.3f} |"
            )
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--random", type=int, default=3, help="random genotypes fitted per seed")
    defaults = Setup()
    for name in ("steps", "channels", "size", "batch", "tune_steps"):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    for name in ("lr", "arch_lr"):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name)
        )
    args = parser.parse_args(argv)
    setup = Setup(
        channels=args.channels,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        lr=args.lr,
        arch_lr=args.arch_lr,
        tune_steps=args.tune_steps,
    )
    torch.set_num_threads(1)
    print(f"# {setup}; torch {torch.__version__}, {platform.processor() or platform.machine()}")
    results = []
    for seed in args.seeds:
        r = run_teacher(seed, setup, num_random=args.random)
        results.append(r)
        print(f"seed {seed}: teacher {r['teacher']}")
        for sel, g in r["found"].items():
            print(f"  {sel}: {g}")
        cost = [
            f"{k} {v.val_passes} validation passes, {v.seconds:.1f} s"
            for k, v in r["selections"].items()
        ]
        print(f"  search {r['search_s']:.0f} s; " + "; ".join(cost), flush=True)
    print("\nrecovered share of the teacher's edges (chance in brackets); fit: relative MSE\n")
    print("\n".join(_table(results)))
    print()
    for sel in results[0]["found"]:
        for m in METRICS:
            got = statistics.mean(r["recovery"][sel][m] for r in results)
            print(f"{sel}_{m}={got:.3f}")
        print(f"{sel}_fit={statistics.mean(r['fit_found'][sel] for r in results):.4f}")
    for m in METRICS:
        print(f"chance_{m}={statistics.mean(r['chance'][m] for r in results):.3f}")
    for key in ("fit_teacher", "fit_random", "fit_supernet"):
        print(f"{key}={statistics.mean(r[key] for r in results):.4f}")


if __name__ == "__main__":
    main()
