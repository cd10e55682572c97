"""Genotypes: the search space's vocabulary, the discrete result of a search, and its forms.

The vocabulary is the candidate op names in the order of the architecture weights, and the layer
stack each name stands for (docs/METHOD.md section 2). It lives here, the one module that both the
cells (:mod:`fad.nas`) and the genotype files read, and imports nothing else of the project but
:mod:`fad.utils`.

A genotype describes one tower's cell. ``normal`` lists the intermediate nodes; each node sums two
edges ``(op_name, source_index)`` where source 0 is the cell input s0, 1 is s1 and k >= 2 is
intermediate node k - 2. ``normal_concat`` is always ``range(2, 2 + num_nodes)``: the cell output
concatenates every intermediate node (docs/METHOD.md sections 5 and 7).

The text form is the original FAD one, ``str(genotype)``::

    Genotype(normal=[[('std_conv_3x3', 0), ('std_conv_3x3_x2', 1)], ...], normal_concat=range(2, 5))

It is parsed with :mod:`ast` and never executed: the original code ran ``eval`` on it, so a
genotype file could run any code.

From the command line, a ``genotype.log`` of two genotypes drawn at random from the search space
(the baseline a search must beat)::

    python -m fad.genotypes random --seed 3 -o random3/genotype.log [--dil3]
"""

import argparse
import ast
import random
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from fad.utils import atomic_open

__all__ = [
    "BASE_TYPES",
    "Genotype",
    "NONE",
    "PRIMITIVES",
    "PRIMITIVES_DIL3",
    "NUM_NODES",
    "FAD_PAPER_BOX",
    "FAD_PAPER_CLS",
    "FAD_OTHER_BOX",
    "FAD_OTHER_CLS",
    "NOT_SEARCHED",
    "RANKS",
    "as_genotype",
    "check_rank",
    "derive_genotype",
    "load_genotype_file",
    "op_layers",
    "primitives",
    "random_genotype",
    "save_genotype_file",
]

NONE = "none"

#: Base layer types of the two representation-sharing chains, in alpha order.
BASE_TYPES: Tuple[str, ...] = ("std", "sinSep")

_BASE_NAME = {"std": "std_conv_3x3", "sinSep": "sinSep_conv_3x3"}
_DIL_SUFFIX = {"dil": "+dil_conv_3x3", "dil3": "+dil_conv_3x3_r3"}


def _candidates(base: str, *, dil3: bool) -> List[Tuple[str, List[str]]]:
    """Names and layer stacks of one base type's candidates, in alpha order.

    The order is the order in which the shared chain produces them (docs/METHOD.md section 3):
    base, base+dil, [base+dil3], base_x2, base_x2+dil, base_x3.
    """
    name = _BASE_NAME[base]
    cands = [(name, [base]), (name + _DIL_SUFFIX["dil"], [base, "dil"])]
    if dil3:
        cands.append((name + _DIL_SUFFIX["dil3"], [base, "dil3"]))
    cands += [
        (name + "_x2", [base, base]),
        (name + "_x2" + _DIL_SUFFIX["dil"], [base, base, "dil"]),
        (name + "_x3", [base, base, base]),
    ]
    return cands


def _space(*, dil3: bool) -> Dict[str, List[str]]:
    return {n: layers for b in BASE_TYPES for n, layers in _candidates(b, dil3=dil3)}


_OP_LAYERS: Dict[str, List[str]] = _space(dil3=True)

#: The published 10 + none candidates, in the order of the architecture weights.
PRIMITIVES: Tuple[str, ...] = tuple(_space(dil3=False)) + (NONE,)
#: The paper's 12 + none candidates (per base type, ``base+dil_conv_3x3_r3`` after ``base+dil``).
PRIMITIVES_DIL3: Tuple[str, ...] = tuple(_OP_LAYERS) + (NONE,)


def primitives(*, dil3: bool = False) -> Tuple[str, ...]:
    """The candidate list of the 10-op (default) or 12-op search space, ``none`` last."""
    return PRIMITIVES_DIL3 if dil3 else PRIMITIVES


def op_layers(name: str) -> List[str]:
    """Layer types that make up the named op, e.g. ``['std', 'std', 'dil']``.

    Raises:
        KeyError: for an unknown name (``none`` has no layers and is unknown here).
    """
    return list(_OP_LAYERS[name])


#: Intermediate nodes of a FAD cell.
NUM_NODES = 3
#: Edges kept per node when a genotype is derived (as in DARTS).
EDGES_PER_NODE = 2

Edge = Tuple[str, int]


@dataclass(frozen=True, eq=True)
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
        nodes = _check_nodes(self.normal)
        concat = self.normal_concat
        expected = range(2, 2 + len(nodes))
        if not isinstance(concat, range) or concat != expected:
            raise ValueError(
                f"normal_concat must be {expected!r} for {len(nodes)} nodes, got {concat!r}"
            )
        object.__setattr__(self, "normal", nodes)

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
    def from_str(cls, text: str, *, num_nodes: Optional[int] = None) -> "Genotype":
        """Parse the original text form without executing anything.

        Args:
            text: ``Genotype(normal=[...], normal_concat=range(2, N))``.
            num_nodes: if given, the number of intermediate nodes the genotype must have.

        Raises:
            ValueError: naming what is wrong for anything but a well-formed genotype.
        """
        if not isinstance(text, str):
            raise ValueError(f"a genotype text must be a string, got {type(text).__name__}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ValueError(
                f"not a genotype (syntax error: {e.msg}): {text.strip()[:80]!r}"
            ) from None
        call = tree.body
        if not (isinstance(call, ast.Call) and _is_name(call.func, "Genotype")):
            raise ValueError(
                f"expected Genotype(normal=..., normal_concat=...), got {_snippet(call)!r}"
            )
        if call.args:
            raise ValueError("Genotype(...) takes keyword arguments normal= and normal_concat=")
        kwargs = {kw.arg: kw.value for kw in call.keywords}
        if set(kwargs) != {"normal", "normal_concat"} or len(call.keywords) != 2:
            raise ValueError(
                "Genotype(...) needs exactly the keywords normal= and normal_concat=, got "
                + ", ".join(str(kw.arg) for kw in call.keywords)
            )
        concat = kwargs["normal_concat"]
        if not (
            isinstance(concat, ast.Call)
            and _is_name(concat.func, "range")
            and not concat.keywords
            and len(concat.args) == 2
        ):
            raise ValueError(f"normal_concat must be range(2, N), got {_snippet(concat)!r}")
        start, stop = (_literal(a) for a in concat.args)
        if not all(type(v) is int for v in (start, stop)):
            raise ValueError(f"normal_concat must be range(2, N), got {_snippet(concat)!r}")
        genotype = cls(normal=_literal(kwargs["normal"]), normal_concat=range(start, stop))
        return genotype._checked(num_nodes)

    def to_plain(self) -> dict:
        """Plain data (dicts, lists, strings, ints) that YAML and LazyConfig keep as they are.

        Returns:
            ``{"normal": [[[op, src], [op, src]], ...], "normal_concat": [2, 3, 4]}``.
        """
        return {
            "normal": [[[op, src] for op, src in node] for node in self.normal],
            "normal_concat": list(self.normal_concat),
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any], *, num_nodes: Optional[int] = None) -> "Genotype":
        """Inverse of :meth:`to_plain` (also accepts OmegaConf containers).

        Raises:
            ValueError: for anything but a well-formed genotype.
        """
        if not isinstance(data, Mapping) or set(data.keys()) != {"normal", "normal_concat"}:
            raise ValueError(
                "a plain-data genotype is a mapping with exactly the keys 'normal' and "
                f"'normal_concat', got {data!r}"
            )
        concat = data["normal_concat"]
        if not isinstance(concat, Sequence) or isinstance(concat, str) or len(concat) == 0:
            raise ValueError(f"normal_concat must be a list of node indices, got {concat!r}")
        concat = list(concat)
        expected = list(range(2, 2 + len(concat)))
        if concat != expected:
            raise ValueError(f"normal_concat must be {expected}, got {concat}")
        genotype = cls(normal=data["normal"], normal_concat=range(2, 2 + len(concat)))
        return genotype._checked(num_nodes)

    def _checked(self, num_nodes: Optional[int]) -> "Genotype":
        if num_nodes is not None and self.num_nodes != num_nodes:
            raise ValueError(f"expected {num_nodes} nodes, the genotype has {self.num_nodes}")
        return self


def _check_nodes(normal: Any) -> List[List[Edge]]:
    """Validate ``normal`` and return it as a fresh list of lists of ``(str, int)`` tuples."""
    if not _is_seq(normal) or len(normal) == 0:
        raise ValueError(f"normal must be a non-empty list of nodes, got {normal!r}")
    nodes = []
    for i, node in enumerate(normal):
        if not _is_seq(node) or len(node) != EDGES_PER_NODE:
            raise ValueError(f"node {i} must have exactly {EDGES_PER_NODE} edges, got {node!r}")
        edges = []
        for j, edge in enumerate(node):
            where = f"node {i} edge {j}"
            if not _is_seq(edge) or len(edge) != 2:
                raise ValueError(f"{where}: an edge is (op_name, source_index), got {edge!r}")
            op, src = edge
            if not isinstance(op, str) or op not in _OP_LAYERS:
                raise ValueError(
                    f"{where}: unknown op {op!r}; known ops: {', '.join(PRIMITIVES_DIL3[:-1])}"
                )
            if type(src) is not int or not 0 <= src < 2 + i:
                raise ValueError(
                    f"{where}: source index {src!r} is not available to node {i} "
                    f"(it can read 0..{1 + i})"
                )
            edges.append((op, src))
        nodes.append(edges)
    return nodes


def _is_seq(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _snippet(node: ast.AST) -> str:
    return ast.unparse(node)[:80]


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression; anything else (a call, a name, ...) is refused."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"only literals may appear in a genotype, got {_snippet(node)!r}"
        ) from None


GenotypeLike = Union[Genotype, str, Mapping[str, Any]]


def as_genotype(value: GenotypeLike, *, num_nodes: Optional[int] = None) -> Genotype:
    """Accept a genotype as a :class:`Genotype`, its text form or its plain-data form.

    This is what configs hold: ``model.head.box_genotype`` may be any of the three.

    Raises:
        ValueError: if the value is not a well-formed genotype (with ``num_nodes`` nodes, if given).
    """
    if isinstance(value, Genotype):
        return value._checked(num_nodes)
    if isinstance(value, str):
        return Genotype.from_str(value, num_nodes=num_nodes)
    if isinstance(value, Mapping):
        return Genotype.from_plain(value, num_nodes=num_nodes)
    raise ValueError(
        "a genotype must be a Genotype, its text or its plain-data form, "
        f"got {type(value).__name__}"
    )


#: The line of ``genotype.log`` for a tower that was not searched (FCOS's plain conv tower).
NOT_SEARCHED = "None"


def load_genotype_file(
    path: str, *, num_nodes: Optional[int] = None
) -> Tuple[Optional[Genotype], Optional[Genotype]]:
    """Read a ``genotype.log``: box tower genotype, then class tower genotype.

    Blank lines and lines starting with ``#`` are ignored. A line ``None`` stands for a tower
    that was not searched (a search of one tower writes it), which stays FCOS's conv tower.

    Returns:
        (box_genotype, cls_genotype), ``None`` for a tower that was not searched.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file and line for a malformed genotype, or if the file does not
            hold exactly two lines, at least one of them a genotype.
    """
    with open(path, encoding="utf-8") as f:
        lines = [
            (n, line.strip())
            for n, line in enumerate(f, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if len(lines) != 2:
        raise ValueError(
            f"{path}: expected 2 genotypes (box tower line, then class tower line), "
            f"found {len(lines)}"
        )
    if all(line == NOT_SEARCHED for _, line in lines):
        raise ValueError(f"{path}: both towers are {NOT_SEARCHED!r}; no tower was searched")
    genotypes: List[Optional[Genotype]] = []
    for n, line in lines:
        if line == NOT_SEARCHED:
            genotypes.append(None)
            continue
        try:
            genotypes.append(Genotype.from_str(line, num_nodes=num_nodes))
        except ValueError as e:
            raise ValueError(f"{path} line {n}: {e}") from None
    return genotypes[0], genotypes[1]


def save_genotype_file(path: str, box: Optional[GenotypeLike], cls: Optional[GenotypeLike]) -> None:
    """Write a ``genotype.log`` (box tower line first), atomically: a reader never sees half.

    A tower that was not searched (``None``) gets the line ``None``.
    """
    if box is None and cls is None:
        raise ValueError("a genotype file needs at least one searched tower")
    text = "".join(f"{NOT_SEARCHED if g is None else as_genotype(g)}\n" for g in (box, cls))
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


#: Rankings of :func:`derive_genotype`.
RANKS = ("softmax", "raw")


def check_rank(rank: str, *, key: str = "rank") -> None:
    """Raises ValueError, naming ``key``, unless ``rank`` is one of :data:`RANKS`."""
    if rank not in RANKS:
        raise ValueError(f"{key} must be {' or '.join(map(repr, RANKS))}, got {rank!r}")


def derive_genotype(
    alphas: Sequence[torch.Tensor],
    *,
    dil3: bool = False,
    rank: str = "softmax",
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
    check_rank(rank)
    names = primitives(dil3=dil3)
    normal = []
    for i, alpha in enumerate(alphas):
        if tuple(alpha.shape) != (2 + i, len(names)):
            raise ValueError(
                f"alpha of node {i} must have shape {(2 + i, len(names))}, got {tuple(alpha.shape)}"
            )
        alpha = alpha.detach().float()
        scores = alpha.softmax(dim=-1) if rank == "softmax" else alpha
        strength, best_op = scores[:, :-1].max(dim=1)  # the last column is 'none'
        edges = strength.topk(EDGES_PER_NODE).indices.tolist()
        normal.append([(names[best_op[e]], e) for e in edges])
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
    if isinstance(seed, random.Random):
        rng = seed
    elif isinstance(seed, int) and not isinstance(seed, bool):
        rng = random.Random(seed)
    else:
        raise ValueError(f"seed must be an int or a random.Random, got {seed!r}")
    if type(num_nodes) is not int or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive int, got {num_nodes!r}")
    ops = primitives(dil3=dil3)[:-1]  # every candidate but 'none'
    normal = [
        [(rng.choice(ops), src) for src in rng.sample(range(2 + i), EDGES_PER_NODE)]
        for i in range(num_nodes)
    ]
    return Genotype(normal=normal, normal_concat=range(2, 2 + num_nodes))


# The architectures published in the paper and in the original README (box tower, class tower).
FAD_PAPER_BOX = Genotype.from_str(
    "Genotype(normal=[[('sinSep_conv_3x3_x3', 0), ('std_conv_3x3_x3', 1)], "
    "[('std_conv_3x3', 2), ('sinSep_conv_3x3+dil_conv_3x3', 1)], "
    "[('sinSep_conv_3x3_x2', 2), ('std_conv_3x3_x2', 3)]], normal_concat=range(2, 5))"
)
FAD_PAPER_CLS = Genotype.from_str(
    "Genotype(normal=[[('sinSep_conv_3x3_x2+dil_conv_3x3', 1), ('std_conv_3x3_x3', 0)], "
    "[('sinSep_conv_3x3_x2+dil_conv_3x3', 0), ('sinSep_conv_3x3', 2)], "
    "[('sinSep_conv_3x3_x2', 2), ('std_conv_3x3', 3)]], normal_concat=range(2, 5))"
)
# "Other good architectures" of the original README.
FAD_OTHER_BOX = Genotype.from_str(
    "Genotype(normal=[[('std_conv_3x3_x3', 0), ('std_conv_3x3_x2', 1)], "
    "[('std_conv_3x3', 0), ('std_conv_3x3+dil_conv_3x3', 2)], "
    "[('std_conv_3x3_x2+dil_conv_3x3', 3), ('std_conv_3x3+dil_conv_3x3', 2)]], "
    "normal_concat=range(2, 5))"
)
FAD_OTHER_CLS = Genotype.from_str(
    "Genotype(normal=[[('std_conv_3x3_x3', 1), ('sinSep_conv_3x3+dil_conv_3x3', 0)], "
    "[('sinSep_conv_3x3', 0), ('sinSep_conv_3x3+dil_conv_3x3', 2)], "
    "[('std_conv_3x3', 1), ('std_conv_3x3_x3', 0)]], normal_concat=range(2, 5))"
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fad.genotypes",
        description="Genotype tools of FAD-D2.",
    )
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
        "--dil3", action="store_true", help="draw from the 12-op space (model.head.dil3=True)"
    )
    rand.add_argument(
        "--num-nodes", type=_positive_int, default=NUM_NODES, help="intermediate nodes per cell"
    )
    rand.add_argument("-o", "--output", metavar="FILE", help="where to write; default: stdout")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m fad.genotypes random --seed S [--dil3] [-o FILE]``.

    Args:
        argv: the arguments; default ``sys.argv[1:]``.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    box, cls = (
        random_genotype(seed=rng, num_nodes=args.num_nodes, dil3=args.dil3) for _ in range(2)
    )
    if args.output is None:
        print(f"{box}\n{cls}")
        return
    try:
        save_genotype_file(args.output, box, cls)
    except OSError as e:
        parser.error(f"cannot write {args.output}: {e}")
    print(f"Random genotypes (seed {args.seed}) written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
