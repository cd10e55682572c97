"""Plots of a search: a genotype's cell (graphviz, as DARTS draws it) and alphas.png (matplotlib).

A cell's inputs are c_{k-2} and c_{k-1}, the outputs of the two cells before cell k (sources 0 and
1); a tower's first cell reads the tower's inputs instead (docs/METHOD.md section 6).
"""

import functools
import html
import logging
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import graphviz
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fad.genotypes import BASE_TYPES, NONE, PRIMITIVES_DIL3, Genotype, primitives
from fad.utils import atomic_open

logger = logging.getLogger(__name__)
#: Names of a cell's inputs, source 0 and 1 (the subscript as Graphviz and matplotlib write it).
CELL_INPUTS = (("c", "k-2"), ("c", "k-1"))
_FONT = {"fontname": "times", "fontsize": "20"}
_KEPT_COLOR = "black"
Path = Union[str, "os.PathLike[str]"]


def genotype_to_graph(
    genotype: Genotype,
    *,
    name: str = "cell",
    first_inputs: Optional[Tuple[str, str]] = None,
    caption: Optional[str] = None,
) -> graphviz.Digraph:
    """A cell as DARTS plots it, left to right: inputs ``in0``, ``in1`` (green) feed the nodes
    ``n0``... (blue) along edges labelled with their op; the nodes feed ``out`` (yellow).

    Args:
        first_inputs: what the tower's first cell reads as c_{k-2} and c_{k-1}, shown under them.
        caption: text under the cell.

    Returns:
        The graph; ``graph.source`` is its DOT source.
    """
    if first_inputs is not None and len(first_inputs) != 2:
        raise ValueError(f"first_inputs must be two names (c_k-2, c_k-1), got {first_inputs!r}")
    graph = graphviz.Digraph(
        name,
        graph_attr={"rankdir": "LR", "labelloc": "b", "label": caption or None, **_FONT},
        node_attr={"style": "filled", "shape": "rect", "penwidth": "2", **_FONT},
        edge_attr=_FONT,
    )
    for i, (c, sub) in enumerate(CELL_INPUTS):
        label = f"{c}<SUB>{sub}</SUB>"
        if first_inputs is not None:
            label += f'<BR/><FONT POINT-SIZE="14">cell 1: {html.escape(first_inputs[i])}</FONT>'
        graph.node(f"in{i}", f"<{label}>", fillcolor="darkseagreen2")
    graph.node("out", "out", fillcolor="palegoldenrod")
    for k, node in enumerate(genotype.normal):
        graph.node(f"n{k}", str(k), fillcolor="lightblue")
        for op, source in node:
            graph.edge(f"in{source}" if source < 2 else f"n{source - 2}", f"n{k}", label=op)
        graph.edge(f"n{k}", "out")
    return graph


@functools.cache
def _warn_no_dot() -> None:
    logger.warning(
        "Graphviz's `dot` program was not found: writing cell plots as .dot source only. "
        "PNG plots need Graphviz (`apt-get install graphviz` or conda `graphviz`)."
    )


def plot_genotype(genotype: Genotype, path_stem: Path, **graph_kwargs) -> Dict[str, str]:
    """Write a cell (``graph_kwargs`` of :func:`genotype_to_graph`) as ``<path_stem>.dot`` and, if
    Graphviz's ``dot`` is installed (else a warning once per process), ``.png``, each atomically.

    Returns:
        ``{"dot": dot_path}``, plus ``"png": png_path`` when the PNG was rendered.
    """
    graph = genotype_to_graph(genotype, **graph_kwargs)
    paths = {"dot": f"{os.fspath(path_stem)}.dot"}
    with atomic_open(paths["dot"], "w", encoding="utf-8") as f:
        f.write(graph.source)
    try:
        png = graph.pipe(format="png")
    except graphviz.ExecutableNotFound:
        _warn_no_dot()
        return paths
    except (graphviz.CalledProcessError, OSError) as e:
        raise RuntimeError(f"Graphviz could not render {paths['dot']}: {e}") from e
    paths["png"] = f"{os.fspath(path_stem)}.png"
    with atomic_open(paths["png"], "wb") as f:
        f.write(png)
    return paths


def _line_style(op: str) -> Dict[str, str]:
    """A hue per variant (matplotlib's colour cycle), solid for std and dashed for sinSep ops."""
    if op == NONE:
        return {"color": "black", "linestyle": ":"}
    base, variant = divmod(PRIMITIVES_DIL3.index(op), len(PRIMITIVES_DIL3) // len(BASE_TYPES))
    return {"color": f"C{variant}", "linestyle": ("-", "--")[base]}


def _source_label(source: int) -> str:
    return "${}_{{{}}}$".format(*CELL_INPUTS[source]) if source < 2 else f"node {source - 2}"


def plot_alpha_history(
    iterations: Sequence[int],
    weights: Mapping[str, torch.Tensor],
    path: Path,
    *,
    genotypes: Optional[Mapping[str, Optional[Genotype]]] = None,
    dil3: bool = False,
    title: Optional[str] = None,
) -> str:
    """Plot each edge's softmax weights over a search as a PNG, atomically: a row per tower and
    node, a panel per incoming edge, a line per candidate, the genotypes' edges framed.

    Args:
        iterations: the iteration of each sample, increasing.
        weights: per tower name, a (T, E, K) tensor: the softmax weights of the E edges (node 0's
            first, by source) over the K candidates (``none`` last) at the T iterations.
        genotypes: per tower name, the genotype whose edges to mark, if any.
        dil3: the weights are over the 12-op space.

    Returns:
        ``path``.
    """
    ops = primitives(dil3=dil3)
    if not weights:
        raise ValueError("no tower to plot")
    rows = []  # (tower, node); node i has 2 + i edges, so n nodes have n(n + 3) / 2
    for name, w in weights.items():
        if w.dim() != 3 or w.shape[0] != len(iterations) or w.shape[2] != len(ops):
            raise ValueError(
                f"weights of the {name} tower must have shape ({len(iterations)}, edges, "
                f"{len(ops)}), got {tuple(w.shape)}"
            )
        n = round(((9 + 8 * w.shape[1]) ** 0.5 - 3) / 2)
        if n * (n + 3) // 2 != w.shape[1]:
            raise ValueError(f"{w.shape[1]} edges do not make a cell (nodes have 2, 3, 4, ...)")
        rows += [(name, node) for node in range(n)]
    cols = 2 + max(node for _, node in rows)
    fig = Figure(figsize=(3.1 * cols, 1.9 * len(rows) + 1.4), dpi=90, layout="constrained")
    axes = fig.subplots(len(rows), cols, sharex=True, sharey=True, squeeze=False)
    for ax_row, (name, node) in zip(axes, rows):
        genotype = (genotypes or {}).get(name)
        kept = {src: op for op, src in genotype.normal[node]} if genotype else {}
        for ax in ax_row[2 + node :]:
            ax.set_axis_off()
        for src, ax in enumerate(ax_row[: 2 + node]):
            ax.axhline(1 / len(ops), color="0.75", linewidth=0.8)  # the uniform weight
            for op, w in zip(ops, weights[name][:, node * (node + 3) // 2 + src].float().T):
                width = 3.0 if op == kept.get(src) else 2.0 if op == NONE else 1.1
                marker = "o" if len(iterations) == 1 else None
                ax.plot(iterations, w.tolist(), marker=marker, linewidth=width, **_line_style(op))
            ax.tick_params(labelsize=7, labelbottom=True)
            label = f"{name} node {node} ← {_source_label(src)}"
            if src in kept:  # an edge of the genotype: framed, its op named
                label += f"\nkept: {kept[src]}"
                ax.spines[:].set(edgecolor=_KEPT_COLOR, linewidth=2.5)
            color, weight = (_KEPT_COLOR, "bold") if src in kept else ("0.35", "normal")
            ax.set_title(label, fontsize=9, color=color, weight=weight)
    fig.supxlabel("iteration", fontsize=8)
    fig.supylabel("softmax weight", fontsize=8)
    # Legend columns pair each variant's std op (first row) with its sinSep op (second row).
    per_base = (len(ops) - 1) // len(BASE_TYPES)
    order = [op for pair in zip(ops[:per_base], ops[per_base:-1]) for op in pair] + [NONE]
    handles = [Line2D([], [], linewidth=1.5, label=op, **_line_style(op)) for op in order]
    fig.legend(
        handles=handles, loc="outside upper center", ncols=per_base + 1, fontsize=7.5, title=title
    )
    with atomic_open(os.fspath(path), "wb") as f:
        fig.savefig(f, format="png")
    return os.fspath(path)
