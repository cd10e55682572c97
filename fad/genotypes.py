"""Genotypes: the search space's vocabulary, the discrete result of a search, and its forms.

The vocabulary is the candidate op names in the order of the architecture weights, and the layer
stack each name stands for (docs/METHOD.md section 2). It lives here, the one module that both the
cells (:mod:`fad.nas`) and the genotype files read, and imports nothing else of the project but
:mod:`fad.utils`.

A genotype describes one tower's cell. ``normal`` lists the intermediate nodes; each node sums two
edges ``(op_name, source_index)`` where source 0 is the cell input s0, 1 is s1 and k >= 2 is
intermediate node k - 2. ``normal_concat`` is always ``range(2, 2 + num_nodes)``: the cell output
concatenates every intermediate node (docs/METHOD.md sections 5 and 7). The text form is the
original FAD one, ``str(genotype)``::

    Genotype(normal=[[('std_conv_3x3', 0), ('std_conv_3x3_x2', 1)], ...], normal_concat=range(2, 5))

It is parsed with :mod:`ast` and never executed (the original code ran ``eval`` on it, so a
genotype file could run any code). The paper's genotypes are the files ``fad/genotypes/*.log``,
package data, read into :data:`FAD_PAPER_BOX` etc. A ``genotype.log`` of two genotypes drawn at
random from the search space (the baseline a search must beat)::

    python -m fad.genotypes random --seed 3 -o random3/genotype.log [--dil3]
"""

import argparse
import ast
import difflib
import os
import random
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from fad.utils import atomic_open

NONE = "none"
#: Base layer types of the two representation-sharing chains, in alpha order.
BASE_TYPES: Tuple[str, ...] = ("std", "sinSep")
# Per base type, each candidate's name suffix and layers (B: the base layer), in the order the
# shared chain produces them (docs/METHOD.md section 3).
_VARIANTS = {
    "": "B",
    "+dil_conv_3x3": "B dil",
    "+dil_conv_3x3_r3": "B dil3",
    "_x2": "B B",
    "_x2+dil_conv_3x3": "B B dil",
    "_x3": "B B B",
}
_OP_LAYERS = {
    f"{base}_conv_3x3{suffix}": [base if layer == "B" else layer for layer in layers.split()]
    for base in BASE_TYPES
    for suffix, layers in _VARIANTS.items()
}
#: The paper's 12 + none candidates, in the order of the architecture weights.
PRIMITIVES_DIL3: Tuple[str, ...] = (*_OP_LAYERS, NONE)
#: The published 10 + none candidates (no dilation-3 variants).
PRIMITIVES: Tuple[str, ...] = tuple(op for op in PRIMITIVES_DIL3 if not op.endswith("_r3"))


def primitives(*, dil3: bool = False) -> Tuple[str, ...]:
    """The candidate list of the 10-op (default) or 12-op search space, ``none`` last."""
    return PRIMITIVES_DIL3 if dil3 else PRIMITIVES


def op_layers(name: str) -> List[str]:
    """Layer types that make up the named op, e.g. ``['std', 'std', 'dil']``.

    Raises:
        KeyError: for an unknown name (``none`` has no layers and is unknown here).
    """
    return list(_OP_LAYERS[name])


NUM_NODES = 3  # intermediate nodes of a FAD cell
Edge = Tuple[str, int]


@dataclass(frozen=True)
class Genotype:
    """One searched cell: nodes of two ``(op_name, source_index)`` edges each.

    Construction validates the structure and raises ``ValueError`` naming the first problem.

    Attributes:
        normal: list of nodes, each a list of two ``(op_name, source_index)`` tuples.
        normal_concat: ``range(2, 2 + len(normal))``.
    """

    normal: List[List[Edge]]
    normal_concat: range

    def __post_init__(self):
        object.__setattr__(self, "normal", _checked_nodes(self.normal))
        expected = range(2, 2 + len(self.normal))
        if self.normal_concat != expected:
            raise ValueError(
                f"normal_concat must be {expected!r} for {len(self.normal)} nodes, "
                f"got {self.normal_concat!r}"
            )

    def __str__(self) -> str:
        # repr() of lists of (str, int) tuples is exactly the original text format.
        return f"Genotype(normal={self.normal!r}, normal_concat={self.normal_concat!r})"

    __repr__ = __str__

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def num_nodes(self) -> int:
        return len(self.normal)

    @classmethod
    def from_str(cls, text: str) -> "Genotype":
        """Parse the text form (a trailing ``# comment`` is allowed) without executing anything.

        Args:
            text: ``Genotype(normal=[...], normal_concat=range(2, N))``.

        Raises:
            ValueError: naming what is wrong for anything but a well-formed genotype.
        """
        if not isinstance(text, str):
            raise ValueError(f"a genotype text must be a string, got {type(text).__name__}")
        try:
            call = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as e:
            raise ValueError(f"not a genotype (syntax error: {e.msg}): {text[:80]!r}") from None
        if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "Genotype"):
            raise ValueError(
                f"expected Genotype(normal=..., normal_concat=...), got {ast.unparse(call)[:80]!r}"
            )
        kwargs = {kw.arg: kw.value for kw in call.keywords}
        if call.args or len(call.keywords) != 2 or set(kwargs) != {"normal", "normal_concat"}:
            raise ValueError(
                "Genotype(...) takes exactly the keyword arguments normal= and normal_concat=, got "
                f"Genotype({', '.join(['...'] * len(call.args) + [f'{k}=...' for k in kwargs])})"
            )
        concat = kwargs["normal_concat"]
        is_range = isinstance(concat, ast.Call) and ast.unparse(concat.func) == "range"
        bounds = [_literal(a) for a in concat.args] if is_range else []
        if len(bounds) != 2 or not all(type(b) is int for b in bounds):
            raise ValueError(f"normal_concat must be range(2, N), got {ast.unparse(concat)!r}")
        return cls(normal=_literal(kwargs["normal"]), normal_concat=range(*bounds))

    def to_plain(self) -> dict:
        """Plain data (dicts, lists, strings, ints) that YAML and LazyConfig keep as they are.

        Returns:
            ``{"normal": [[[op, src], [op, src]], ...], "normal_concat": [2, 3, 4]}``.
        """
        return {
            "normal": [[[op, src] for op, src in node] for node in self.normal],
            "normal_concat": list(self.normal_concat),
        }


def _checked_nodes(normal: Any) -> List[List[Edge]]:
    """Validate ``normal`` and return it as a fresh list of lists of ``(str, int)`` tuples."""
    if not _is_seq(normal) or len(normal) == 0:
        raise ValueError(f"normal must be a non-empty list of nodes, got {normal!r}")
    for i, node in enumerate(normal):
        if not _is_seq(node) or len(node) != 2:
            raise ValueError(f"node {i} must have exactly 2 edges, got {node!r}")
        for j, edge in enumerate(node):
            if not _is_seq(edge) or len(edge) != 2:
                raise ValueError(
                    f"node {i} edge {j}: an edge is (op_name, source_index), got {edge!r}"
                )
            op, src = edge
            if not isinstance(op, str) or op not in _OP_LAYERS:
                close = difflib.get_close_matches(str(op), _OP_LAYERS, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"known ops: {', '.join(_OP_LAYERS)}"
                )
                raise ValueError(f"node {i} edge {j}: unknown op {op!r}; {hint}")
            if type(src) is not int or not 0 <= src < 2 + i:
                raise ValueError(
                    f"node {i} edge {j}: source index {src!r} is not available to node {i} "
                    f"(it can read 0..{1 + i})"
                )
    return [[(op, src) for op, src in node] for node in normal]


def _is_seq(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression; anything else (a call, a name, ...) is refused."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"only literals may appear in a genotype, got {ast.unparse(node)[:80]!r}"
        ) from None


GenotypeLike = Union[Genotype, str, Mapping[str, Any]]


def as_genotype(value: GenotypeLike, *, num_nodes: Optional[int] = None) -> Genotype:
    """Accept a genotype as a :class:`Genotype`, its text form or its plain-data form.

    This is what configs hold: ``model.head.box_tower.genotype`` may be any of the three. The plain
    form is that of :meth:`Genotype.to_plain` (an OmegaConf container too).

    Raises:
        ValueError: if the value is not a well-formed genotype (with ``num_nodes`` nodes, if given).
    """
    if isinstance(value, str):
        value = Genotype.from_str(value)
    elif isinstance(value, Mapping):
        if set(value.keys()) != {"normal", "normal_concat"}:
            raise ValueError(
                "a plain-data genotype is a mapping with exactly the keys 'normal' and "
                f"'normal_concat', got {value!r}"
            )
        concat = value["normal_concat"]
        if not _is_seq(concat) or list(concat) != list(range(2, 2 + len(concat))):
            raise ValueError(f"normal_concat must be [2, 3, ...] (a list), got {concat!r}")
        value = Genotype(normal=value["normal"], normal_concat=range(2, 2 + len(concat)))
    elif not isinstance(value, Genotype):
        raise ValueError(
            "a genotype must be a Genotype, its text or its plain-data form, "
            f"got {type(value).__name__}"
        )
    if num_nodes is not None and value.num_nodes != num_nodes:
        raise ValueError(f"expected {num_nodes} nodes, the genotype has {value.num_nodes}")
    return value


# genotype.log: one line per tower, each ending with a comment that names its tower; the line of
# a tower that was not searched (the detector's conv tower) is "None". Files written before the
# labels are the two lines of a detector's towers: the box tower's, then the class tower's.
TOWER_LABELS = {"box": "box tower", "cls": "class tower", "mask": "mask tower"}
_DETECTOR_TOWERS = ("box", "cls")


def load_genotype_file(
    path: str, *, num_nodes: Optional[int] = None
) -> Dict[str, Optional[Genotype]]:
    """Read a ``genotype.log``: the genotype of each tower a search searched, by tower name.

    A line's trailing comment names its tower (``# box tower``, ``# class tower``,
    ``# mask tower``); an unlabelled file of two lines is a detector's, box tower first. Other
    comments and blank lines are ignored. A line ``None`` stands for a tower that was not
    searched (a search of one of a detector's towers writes it).

    Returns:
        ``{"box": ..., "cls": ...}`` for a detector's towers, ``{"mask": ...}`` for a Mask R-CNN
        mask tower, in the file's order; ``None`` for a tower that was not searched.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file and line for a malformed genotype, or if the lines do not
            name towers (two unlabelled lines, or labelled ones), or none is a genotype.
    """
    with open(path, encoding="utf-8") as f:
        lines = [(n, *line.partition("#")[::2]) for n, line in enumerate(f, 1)]
    lines = [(n, text.strip(), label.split(",")[0].strip()) for n, text, label in lines]
    lines = [line for line in lines if line[1]]
    names = {label: name for name, label in TOWER_LABELS.items()}
    towers = [names.get(label) for _, _, label in lines]
    if None in towers:
        if any(towers) or len(lines) != 2:  # labelled in part, or not a detector's two lines
            raise ValueError(
                f"{path}: expected 2 unlabelled lines (box tower, then class tower) or every "
                f"line labelled {', '.join(f'# {label}' for label in TOWER_LABELS.values())}; "
                f"found {len(lines)} lines, {sum(map(bool, towers))} labelled"
            )
        towers = list(_DETECTOR_TOWERS)
    if len(set(towers)) != len(towers):
        raise ValueError(f"{path}: a tower has two lines")
    if all(text == "None" for _, text, _ in lines):
        raise ValueError(f"{path}: every tower is 'None'; no tower was searched")
    genotypes = {}
    for tower, (n, text, _) in zip(towers, lines):
        try:
            genotypes[tower] = None if text == "None" else as_genotype(text, num_nodes=num_nodes)
        except ValueError as e:
            raise ValueError(f"{path} line {n}: {e}") from None
    return genotypes


def save_genotype_file(path: str, genotypes: Mapping[str, Optional[GenotypeLike]]) -> None:
    """Write a ``genotype.log`` atomically (a reader never sees half): a labelled line per tower.

    Args:
        genotypes: by tower name (``"box"``, ``"cls"``, ``"mask"``, see :data:`TOWER_LABELS`),
            in the order of the file; ``None`` for a tower that was not searched.
    """
    if all(g is None for g in genotypes.values()):
        raise ValueError("a genotype file needs at least one searched tower")
    with atomic_open(path, "w", encoding="utf-8") as f:
        for tower, g in genotypes.items():
            label = TOWER_LABELS[tower]
            f.write(
                f"None  # {label}, not searched\n"
                if g is None
                else f"{as_genotype(g)}  # {label}\n"
            )


#: How :func:`derive_genotype` ranks candidates: softmax weights (DARTS) or raw alphas.
RANKS = ("softmax", "raw")


def derive_genotype(
    alphas: Sequence[torch.Tensor], *, dil3: bool = False, rank: str = "softmax"
) -> Genotype:
    """Derive a genotype from one tower's architecture weights (docs/METHOD.md section 7).

    For each node, an incoming edge's strength is its best op weight outside ``none``; the two
    strongest edges are kept, strongest first, each with that best op.

    Args:
        alphas: per node i, a tensor of shape (2 + i, len(primitives)), ``none`` last.
        dil3: the alphas are over the 12-op space.
        rank: ``"softmax"`` ranks softmax weights, as DARTS does; ``"raw"`` ranks the raw
            alphas, as the original FAD code did (it can keep different edges), for comparison
            with old runs.

    Returns:
        The derived :class:`Genotype`.
    """
    if rank not in RANKS:
        raise ValueError(f"rank must be {' or '.join(map(repr, RANKS))}, got {rank!r}")
    names = primitives(dil3=dil3)
    normal = []
    for i, alpha in enumerate(alphas):
        if tuple(alpha.shape) != (2 + i, len(names)):
            raise ValueError(
                f"alpha of node {i} must have shape {(2 + i, len(names))}, got {tuple(alpha.shape)}"
            )
        scores = alpha.detach().float()
        scores = scores.softmax(dim=-1) if rank == "softmax" else scores
        strength, best_op = scores[:, :-1].max(dim=1)  # the last column is 'none'
        normal.append([(names[best_op[e]], e) for e in strength.topk(2).indices.tolist()])
    return Genotype(normal=normal, normal_concat=range(2, 2 + len(normal)))


def random_genotype(
    *, seed: Union[int, random.Random], num_nodes: int = NUM_NODES, dil3: bool = False
) -> Genotype:
    """A genotype drawn uniformly from the search space: the baseline a search must beat.

    Node i reads two distinct sources drawn uniformly among its 2 + i earlier states, each edge
    with an op drawn uniformly among the candidates other than ``none``; so every cell a search
    can derive is equally likely.

    Args:
        seed: an int for a reproducible draw, or a :class:`random.Random` to draw from (to draw
            several genotypes, e.g. a box and a class tower, from one seed).
        num_nodes: intermediate nodes of the cell.
        dil3: draw ops from the 12-op space with dilation-3 variants.

    Returns:
        The drawn :class:`Genotype`.

    Raises:
        ValueError: for a seed that is neither an int nor a ``random.Random``, or fewer than
            one node.
    """
    if not isinstance(seed, random.Random) and (type(seed) is not int):
        raise ValueError(f"seed must be an int or a random.Random, got {seed!r}")
    if type(num_nodes) is not int or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive int, got {num_nodes!r}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    ops = primitives(dil3=dil3)[:-1]  # every candidate but 'none'
    normal = [
        [(rng.choice(ops), src) for src in rng.sample(range(2 + i), 2)] for i in range(num_nodes)
    ]
    return Genotype(normal=normal, normal_concat=range(2, 2 + num_nodes))


# The shipped genotypes (box tower, class tower): package data, so any install has them.
_SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "genotypes")
#: The architectures reported in the paper.
FAD_PAPER_BOX, FAD_PAPER_CLS = load_genotype_file(os.path.join(_SHIPPED, "fad_paper.log")).values()
#: The "other good architectures" of the original README.
FAD_OTHER_BOX, FAD_OTHER_CLS = load_genotype_file(os.path.join(_SHIPPED, "fad_other.log")).values()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m fad.genotypes random --seed S [--dil3] [--num-nodes N] [-o FILE]``.

    Args:
        argv: the arguments; default ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(prog="python -m fad.genotypes", description="Genotype tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rand = commands.add_parser(
        "random",
        help="draw a box and a class tower genotype uniformly from the search space",
        description="Write a genotype.log (box tower line, class tower line) of two genotypes "
        "drawn uniformly from the search space, both from one seed; train it with "
        "train_net.py --genotype-file FILE.",
    )
    rand.add_argument("--seed", type=int, required=True, help="the same seed draws the same pair")
    rand.add_argument(
        "--dil3", action="store_true", help="draw from the 12-op space (a search tower's dil3=True)"
    )
    rand.add_argument(
        "--num-nodes", type=int, default=NUM_NODES, help="intermediate nodes per cell"
    )
    rand.add_argument("-o", "--output", metavar="FILE", help="where to write; default: stdout")
    args = parser.parse_args(argv)
    if args.num_nodes < 1:
        rand.error(f"argument --num-nodes: must be at least 1, got {args.num_nodes}")
    rng = random.Random(args.seed)
    box, cls = (random_genotype(seed=rng, num_nodes=args.num_nodes, dil3=args.dil3) for _ in "bc")
    if args.output is None:
        print(f"{box}\n{cls}")
        return
    try:
        save_genotype_file(args.output, {"box": box, "cls": cls})
    except OSError as e:
        rand.error(f"cannot write {args.output}: {e}")
    print(f"Random genotypes (seed {args.seed}) written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
