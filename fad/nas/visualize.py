"""Plots of a search: a genotype's cell, and how the architecture weights moved.

Every picture names a cell's two inputs as DARTS does: c_{k-2} and c_{k-1}, the outputs of the two
cells before cell k (source 0 and 1 of a genotype). A tower's first cell reads the tower's inputs
instead: the FPN feature twice in the box tower, ``bbox_feature`` and the FPN feature in the class
tower (docs/METHOD.md section 6); a cell plot can name them.

Cell plots follow DARTS' and pt.darts' ``visualize.py``, built with the ``graphviz`` package. Its
``dot`` program, when installed, renders them to PNG; without it only the DOT source is written,
and one warning per process says how to get PNGs. :func:`plot_alpha_history` draws, with
matplotlib (no pyplot: it sets no global backend), the softmax weights of every edge's candidates
over a search, with the derived genotype's edges marked.
"""

import functools
import html
import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import graphviz
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fad.genotypes import BASE_TYPES, NONE, Genotype, primitives
from fad.utils import atomic_open

__all__ = ["CELL_INPUTS", "genotype_to_graph", "plot_alpha_history", "plot_genotype"]

logger = logging.getLogger(__name__)

#: Names of a cell's inputs, source 0 and 1 (the subscript as Graphviz and matplotlib write it).
CELL_INPUTS = (("c", "k-2"), ("c", "k-1"))
# pt.darts colours: inputs green, intermediate nodes blue, the output yellow.
_COLORS = {"input": "darkseagreen2", "node": "lightblue", "out": "palegoldenrod"}
_FONT = {"fontname": "times", "fontsize": "20"}


def _node_id(source: int) -> str:
    """Node id of an edge source: inputs ``in0``/``in1``, intermediate node k - 2 ``n{k-2}``."""
    return f"in{source}" if source < 2 else f"n{source - 2}"


def genotype_to_graph(
    genotype: Genotype,
    *,
    name: str = "cell",
    first_inputs: Optional[Tuple[str, str]] = None,
    caption: Optional[str] = None,
) -> graphviz.Digraph:
    """A genotype's cell as a left-to-right digraph, as DARTS plots it.

    The inputs c_{k-2}, c_{k-1} (green) feed intermediate nodes ``0 .. n-1`` (blue) along edges
    labelled with their op; every intermediate node feeds the output ``out`` (yellow), their
    concatenation. Node ids are ``in0``, ``in1``, ``n0``..., ``out``.

    Args:
        genotype: the cell; ``genotype.normal`` lists the nodes, each two ``(op_name, source)``
            edges where source 0 is c_{k-2}, 1 is c_{k-1} and k >= 2 node k - 2.
        name: the graph's name.
        first_inputs: what the tower's first cell reads as c_{k-2} and c_{k-1}, shown under the
            input names, or ``None``.
        caption: text shown under the cell, or ``None`` for none.

    Returns:
        The graph; ``graph.source`` is its DOT source.

    Raises:
        ValueError: if ``first_inputs`` does not hold exactly two names.
    """
    if first_inputs is not None and len(first_inputs) != 2:
        raise ValueError(f"first_inputs must be two names (c_k-2, c_k-1), got {first_inputs!r}")
    graph = graphviz.Digraph(
        name,
        graph_attr={
            "rankdir": "LR",
            **({"label": caption, "labelloc": "b", **_FONT} if caption else {}),
        },
        node_attr={"style": "filled", "shape": "rect", "penwidth": "2", **_FONT},
        edge_attr=_FONT,
    )
    for i, (c, sub) in enumerate(CELL_INPUTS):
        first = (
            ""
            if first_inputs is None
            else f'<BR/><FONT POINT-SIZE="14">cell 1: {html.escape(first_inputs[i])}</FONT>'
        )
        graph.node(_node_id(i), f"<{c}<SUB>{sub}</SUB>{first}>", fillcolor=_COLORS["input"])
    for k in range(genotype.num_nodes):
        graph.node(f"n{k}", str(k), fillcolor=_COLORS["node"])
    graph.node("out", "out", fillcolor=_COLORS["out"])
    for k, node in enumerate(genotype.normal):
        for op, source in node:
            graph.edge(_node_id(source), f"n{k}", label=op)
        graph.edge(f"n{k}", "out")
    return graph


@functools.cache
def _warn_no_dot() -> None:
    """Log, once per process, that PNG plots need Graphviz."""
    logger.warning(
        "Graphviz's `dot` program was not found: writing cell plots as .dot source only. "
        "PNG plots need Graphviz (`apt-get install graphviz` or conda `graphviz`)."
    )


def plot_genotype(
    genotype: Genotype, path_stem: Union[str, "os.PathLike[str]"], **graph_kwargs
) -> Dict[str, str]:
    """Write a genotype's cell as ``<path_stem>.dot`` and, with Graphviz, ``<path_stem>.png``.

    Both files are written atomically (see :func:`fad.utils.atomic_open`); the directory is
    created if needed. If the ``dot`` program is not installed, only the DOT source is written
    and a warning is logged once per process.

    Args:
        genotype: the cell.
        path_stem: output path without extension.
        graph_kwargs: ``name``, ``first_inputs``, ``caption`` of :func:`genotype_to_graph`.

    Returns:
        ``{"dot": dot_path}``, plus ``"png": png_path`` when the PNG was rendered.

    Raises:
        RuntimeError: if ``dot`` is installed but fails, naming its error.
    """
    stem = os.fspath(path_stem)
    graph = genotype_to_graph(genotype, **graph_kwargs)
    paths = {"dot": stem + ".dot"}
    with atomic_open(paths["dot"], "w", encoding="utf-8") as f:
        f.write(graph.source)
    try:
        png = graph.pipe(format="png")
    except graphviz.ExecutableNotFound:
        _warn_no_dot()
        return paths
    except (graphviz.CalledProcessError, OSError) as e:
        raise RuntimeError(f"Graphviz could not render {paths['dot']}: {e}") from e
    paths["png"] = stem + ".png"
    with atomic_open(paths["png"], "wb") as f:
        f.write(png)
    return paths


# alphas.png: a hue per candidate variant (a qualitative palette, hues far apart), solid for std
# ops and dashed for sinSep ops; 'none' black and dotted; the kept op of a kept edge thick.
_VARIANT_COLORS = {
    "": "#1f77b4",  # blue
    "+dil_conv_3x3": "#ff7f0e",  # orange
    "+dil_conv_3x3_r3": "#17becf",  # cyan
    "_x2": "#2ca02c",  # green
    "_x2+dil_conv_3x3": "#9467bd",  # purple
    "_x3": "#e377c2",  # pink
}
_BASE_STYLES = dict(zip(BASE_TYPES, ("-", "--")))
_KEPT_COLOR = "black"


def _line_style(op: str) -> Dict[str, str]:
    if op == NONE:
        return {"color": "black", "linestyle": ":"}
    base, variant = op.split("_conv_3x3", 1)
    return {"color": _VARIANT_COLORS[variant], "linestyle": _BASE_STYLES[base]}


def _source_label(source: int) -> str:
    return "${}_{{{}}}$".format(*CELL_INPUTS[source]) if source < 2 else f"node {source - 2}"


def _node_sources(num_edges: int) -> List[int]:
    """Sources per node of a cell with ``num_edges`` edges (2, 3, 4, ... per node)."""
    counts: List[int] = []
    while sum(counts) < num_edges:
        counts.append(2 + len(counts))
    if sum(counts) != num_edges:
        raise ValueError(f"{num_edges} edges do not make a cell (nodes have 2, 3, 4, ... edges)")
    return counts


def plot_alpha_history(
    iterations: Sequence[int],
    weights: Mapping[str, torch.Tensor],
    path: Union[str, "os.PathLike[str]"],
    *,
    genotypes: Optional[Mapping[str, Optional[Genotype]]] = None,
    dil3: bool = False,
    title: Optional[str] = None,
) -> str:
    """Plot how the softmax weights of each edge's candidates moved over a search, as a PNG.

    Small multiples: a row per tower and node, a panel per incoming edge (node i has 2 + i),
    the candidates as lines over the iterations, ``none`` black and dotted, the uniform weight
    1 / K as a grey line. The edges of each tower's derived genotype are framed, with the kept op
    drawn thick and named in the panel's title. The file is written atomically.

    Args:
        iterations: the iteration of each sample, increasing.
        weights: per tower name (``"box"``, ``"cls"``), a (T, E, K) tensor: the softmax weights
            of the E edges (node 0's edges first, by source) over the K candidates (``none``
            last), at each of the T sampled iterations.
        path: the PNG to write.
        genotypes: per tower name, the genotype to mark (``None`` or missing: nothing marked).
        dil3: the weights are over the 12-op space.
        title: a line above the plot.

    Returns:
        The path written.

    Raises:
        ValueError: if the shapes do not fit ``iterations``, the op space or a cell.
    """
    ops = primitives(dil3=dil3)
    if not weights:
        raise ValueError("no tower to plot")
    layout = {}
    for name, w in weights.items():
        if w.dim() != 3 or w.shape[0] != len(iterations) or w.shape[2] != len(ops):
            raise ValueError(
                f"weights of the {name} tower must have shape ({len(iterations)}, edges, "
                f"{len(ops)}), got {tuple(w.shape)}"
            )
        layout[name] = _node_sources(w.shape[1])
    rows = [(name, i, n) for name, counts in layout.items() for i, n in enumerate(counts)]
    cols = max(n for _, _, n in rows)
    fig = Figure(figsize=(3.1 * cols, 1.9 * len(rows) + 1.4), dpi=90, layout="constrained")
    axes = fig.subplots(len(rows), cols, sharex=True, sharey=True, squeeze=False)
    x = list(iterations)
    genotypes = genotypes or {}
    for r, (name, node, num_sources) in enumerate(rows):
        edge0 = sum(layout[name][:node])
        genotype = genotypes.get(name)
        kept = {src: op for op, src in genotype.normal[node]} if genotype else {}
        for src, ax in enumerate(axes[r]):
            if src >= num_sources:
                ax.set_axis_off()
                continue
            chosen = kept.get(src)
            ax.axhline(1.0 / len(ops), color="0.75", linewidth=0.8)
            for op, w in zip(ops, weights[name][:, edge0 + src, :].float().T.tolist()):
                width = 3.0 if op == chosen else 2.0 if op == NONE else 1.1
                ax.plot(
                    x, w, marker="o" if len(x) == 1 else None, linewidth=width, **_line_style(op)
                )
            label = f"{name} node {node} ← {_source_label(src)}"
            if chosen is None:
                ax.set_title(label, fontsize=9, color="0.35")
                continue
            ax.set_title(f"{label}\nkept: {chosen}", fontsize=9, color=_KEPT_COLOR, weight="bold")
            for spine in ax.spines.values():
                spine.set(edgecolor=_KEPT_COLOR, linewidth=2.5)
        axes[r][0].set_ylabel("softmax weight", fontsize=8)
    for ax in axes.flat:
        ax.tick_params(labelsize=7, labelbottom=True)
    for ax in axes[-1]:
        ax.set_xlabel("iteration", fontsize=8)
    # Legend columns pair each variant's std op (first row) with its sinSep op (second row).
    per_base = (len(ops) - 1) // len(BASE_TYPES)
    order = [ops[k + b * per_base] for k in range(per_base) for b in range(len(BASE_TYPES))]
    fig.legend(
        [Line2D([], [], linewidth=1.5, **_line_style(op)) for op in [*order, NONE]],
        [*order, NONE],
        loc="outside upper center",
        ncols=per_base + 1,
        fontsize=7.5,
        title=title,
        title_fontsize=10,
    )
    with atomic_open(os.fspath(path), "wb") as f:
        fig.savefig(f, format="png")
    return os.fspath(path)
