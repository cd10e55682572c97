"""The candidate ops and genotypes: the cell a search derives, its text, file and plain forms.

A genotype's node sums two edges ``(op_name, source)``: source 0 is s0, 1 is s1, k >= 2 node k - 2
(docs/METHOD.md sections 2, 5, 7). Its text, the original FAD one, is parsed, never executed. The
paper's genotypes are the package data ``fad/genotypes/*.log``. A random pair, a search's baseline:
``python -m fad.genotypes random --seed 3 -o random3/genotype.log [--dil3]``.
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
# Each candidate's name suffix and layers (B: the base layer), in the shared chain's order.
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
#: How :func:`derive_genotype` ranks candidates: softmax weights (DARTS) or raw alphas.
RANKS = ("softmax", "raw")
#: The label comment of each tower's line in a genotype.log.
TOWER_LABELS = {"box": "box tower", "cls": "class tower", "mask": "mask tower"}


def primitives(*, dil3: bool = False) -> Tuple[str, ...]:
    """The candidates of the 10-op (default) or 12-op search space, ``none`` last."""
    return PRIMITIVES_DIL3 if dil3 else PRIMITIVES


def op_layers(name: str) -> List[str]:
    """Layer types of the named op, e.g. ``['std', 'std', 'dil']``; KeyError for ``none``."""
    return list(_OP_LAYERS[name])


def _is_seq(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _node(node: Any, i: int) -> List[Tuple[str, int]]:
    """Node ``i`` as a list of ``(op, source)`` tuples; ValueError naming its first fault."""
    if not _is_seq(node) or len(node) != 2:
        raise ValueError(f"node {i} must have exactly 2 edges, got {node!r}")
    for j, edge in enumerate(node):
        where = f"node {i} edge {j}"
        if not _is_seq(edge) or len(edge) != 2:
            raise ValueError(f"{where}: an edge is (op_name, source_index), got {edge!r}")
        op, src = edge
        if not isinstance(op, str) or op not in _OP_LAYERS:
            close = difflib.get_close_matches(str(op), _OP_LAYERS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known ops: " + ", ".join(_OP_LAYERS)
            raise ValueError(f"{where}: unknown op {op!r}; {hint}")
        if type(src) is not int or not 0 <= src < 2 + i:
            raise ValueError(f"{where}: source index {src!r} is not available (0..{1 + i} are)")
    return [tuple(edge) for edge in node]


@dataclass(frozen=True)
class Genotype:
    """One searched cell, its ``repr`` the text form; a malformed one raises ``ValueError``.

    Attributes:
        normal: per node, two ``(op_name, source_index)`` edges.
        normal_concat: ``range(2, 2 + len(normal))``, also given as the list (plain data).
    """

    normal: List[List[Tuple[str, int]]]
    normal_concat: range

    def __post_init__(self):
        if not _is_seq(self.normal) or not self.normal:
            raise ValueError(f"normal must be a non-empty list of nodes, got {self.normal!r}")
        normal = [_node(node, i) for i, node in enumerate(self.normal)]
        expected, given = range(2, 2 + len(normal)), self.normal_concat
        if not _is_seq(given) or list(given) != list(expected):
            raise ValueError(f"normal_concat must be {expected} or {list(expected)}, got {given!r}")
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "normal_concat", expected)

    def __hash__(self) -> int:
        return hash(repr(self))

    @property
    def num_nodes(self) -> int:
        return len(self.normal)

    @classmethod
    def from_str(cls, text: str) -> "Genotype":
        """Parse the text form (a trailing ``# comment`` allowed); ValueError naming a fault."""
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
        names = [kw.arg for kw in call.keywords]
        if call.args or sorted(names, key=str) != ["normal", "normal_concat"]:
            given = ["..."] * len(call.args) + [f"{k}=..." for k in names]
            raise ValueError(
                "Genotype(...) takes exactly the keyword arguments normal= and normal_concat=, "
                f"got Genotype({', '.join(given)})"
            )
        kwargs = {kw.arg: kw.value for kw in call.keywords}
        concat = kwargs["normal_concat"]
        is_range = isinstance(concat, ast.Call) and ast.unparse(concat.func) == "range"
        try:  # literals only: a call, a name or an attribute is refused, never evaluated
            literals = [kwargs["normal"], *(concat.args if is_range else [])]
            normal, *bounds = ast.literal_eval(ast.Tuple(literals, ast.Load()))
        except (ValueError, TypeError):
            raise ValueError(f"only literals may appear in a genotype, got {text[:80]!r}") from None
        if not is_range or len(bounds) != 2 or not all(type(b) is int for b in bounds):
            raise ValueError(f"normal_concat must be range(2, N), got {ast.unparse(concat)!r}")
        return cls(normal=normal, normal_concat=range(*bounds))

    def to_plain(self) -> dict:
        """``{"normal": [[[op, src], [op, src]], ...], "normal_concat": [2, 3, 4]}`` (for YAML)."""
        return {
            "normal": [[list(edge) for edge in node] for node in self.normal],
            "normal_concat": list(self.normal_concat),
        }


GenotypeLike = Union[Genotype, str, Mapping[str, Any]]


def as_genotype(value: GenotypeLike, *, num_nodes: Optional[int] = None) -> Genotype:
    """A :class:`Genotype` from what a config holds: one, its text or its plain data (that of
    :meth:`Genotype.to_plain`, an OmegaConf container too); ValueError if malformed, or if it has
    not ``num_nodes`` nodes (when given)."""
    if isinstance(value, str):
        value = Genotype.from_str(value)
    elif isinstance(value, Mapping):
        if set(value.keys()) != {"normal", "normal_concat"}:
            raise ValueError(
                "a plain-data genotype is a mapping with exactly the keys 'normal' and "
                f"'normal_concat', got {value!r}"
            )
        value = Genotype(**value)
    elif not isinstance(value, Genotype):
        raise ValueError(
            f"a genotype must be a Genotype, its text or its plain data, got {type(value).__name__}"
        )
    if num_nodes is not None and value.num_nodes != num_nodes:
        raise ValueError(f"expected {num_nodes} nodes, the genotype has {value.num_nodes}")
    return value


def load_genotype_file(
    path: str, *, num_nodes: Optional[int] = None
) -> Dict[str, Optional[Genotype]]:
    """Read a ``genotype.log``: a line per tower labelled by its comment (``# box tower``...),
    ``None`` for one not searched; two unlabelled lines (files from before the labels) are a
    detector's box and class towers. Other comments and blank lines are ignored.

    Returns:
        By tower name in the file's order, ``{"box": ..., "cls": ...}`` or ``{"mask": ...}``.
    """
    names = {label: tower for tower, label in TOWER_LABELS.items()}
    with open(path, encoding="utf-8") as f:
        lines = [(n, line.partition("#")) for n, line in enumerate(f, 1)]
    lines = [(n, t.strip(), names.get(c.split(",")[0].strip())) for n, (t, _, c) in lines]
    lines = [line for line in lines if line[1]]
    towers = [tower for _, _, tower in lines]
    if None in towers:
        if any(towers) or len(lines) != 2:  # labelled in part, or not a detector's two lines
            raise ValueError(
                f"{path}: expected 2 unlabelled lines (box tower, then class tower) or every "
                f"line labelled {', '.join(f'# {label}' for label in TOWER_LABELS.values())}; "
                f"found {len(lines)} lines, {sum(map(bool, towers))} labelled"
            )
        towers = ["box", "cls"]
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
    """Write a ``genotype.log`` atomically from the genotypes by tower name (``None``: not
    searched), a labelled line per tower."""
    if all(g is None for g in genotypes.values()):
        raise ValueError("a genotype file needs at least one searched tower")
    with atomic_open(path, "w", encoding="utf-8") as f:
        for tower, g in genotypes.items():
            label = TOWER_LABELS[tower] + (", not searched" if g is None else "")
            f.write(f"{'None' if g is None else as_genotype(g)}  # {label}\n")


def derive_genotype(
    alphas: Sequence[torch.Tensor], *, dil3: bool = False, rank: str = "softmax"
) -> Genotype:
    """One tower's genotype (docs/METHOD.md section 7): per node, the two edges whose best op
    outside ``none`` is strongest, strongest first, each with that op.

    Args:
        alphas: per node i, a tensor of shape (2 + i, len(primitives(dil3=dil3))), ``none`` last.
        dil3: the alphas are over the 12-op space.
        rank: ``"softmax"`` ranks softmax weights, as DARTS does; ``"raw"`` the raw alphas, as
            the original FAD code did (it can keep other edges).
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
    *, seed: Union[int, random.Random], num_nodes: int = 3, dil3: bool = False
) -> Genotype:
    """A genotype drawn uniformly from those a search can derive: node i reads two distinct
    sources among its 2 + i, each edge an op other than ``none``.

    Args:
        seed: an int, or a :class:`random.Random` to draw from (several genotypes from one seed).
        num_nodes: intermediate nodes of the cell, at least 1.
        dil3: draw ops from the 12-op space.
    """
    if not isinstance(seed, random.Random) and type(seed) is not int:
        raise ValueError(f"seed must be an int or a random.Random, got {seed!r}")
    if type(num_nodes) is not int or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive int, got {num_nodes!r}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    ops = primitives(dil3=dil3)[:-1]
    normal = [[(rng.choice(ops), s) for s in rng.sample(range(2 + i), 2)] for i in range(num_nodes)]
    return Genotype(normal=normal, normal_concat=range(2, 2 + num_nodes))


_SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "genotypes")
#: The architectures reported in the paper (box tower, class tower).
FAD_PAPER_BOX, FAD_PAPER_CLS = load_genotype_file(os.path.join(_SHIPPED, "fad_paper.log")).values()
#: The "other good architectures" of the original README.
FAD_OTHER_BOX, FAD_OTHER_CLS = load_genotype_file(os.path.join(_SHIPPED, "fad_other.log")).values()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m fad.genotypes random --seed S [--dil3] [--num-nodes N] [-o FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m fad.genotypes", description="Genotype tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rand = commands.add_parser(
        "random",
        help="write a genotype.log of a box and a class tower drawn uniformly from one seed "
        "(train it with train_net.py --genotype-file)",
    )
    rand.add_argument("--seed", type=int, required=True, help="the same seed draws the same pair")
    rand.add_argument("--dil3", action="store_true", help="draw from the 12-op space")
    rand.add_argument("--num-nodes", type=int, default=3, help="intermediate nodes")
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
