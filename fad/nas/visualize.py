"""Plots of a genotype's cell, in the style of DARTS' and pt.darts' ``visualize.py``.

The graph is built with the ``graphviz`` Python package. Its ``dot`` program, when installed,
renders it to PNG; without it only the DOT source is written, and one warning per process says
how to get PNGs.

The FAD heads read the FPN feature twice in the box tower and the box tower's output plus the FPN
feature in the class tower, so their plots use ``inputs=("feature", "feature")`` and
``inputs=("bbox_feature", "feature")``.
"""

import logging
import os
from typing import Dict, Optional, Tuple, Union

import graphviz

from fad.genotypes import Genotype
from fad.utils import atomic_open

__all__ = ["genotype_to_graph", "plot_genotype"]

logger = logging.getLogger(__name__)

# pt.darts colours: inputs green, intermediate nodes blue, the output yellow.
_INPUT_COLOR = "darkseagreen2"
_NODE_COLOR = "lightblue"
_OUTPUT_COLOR = "palegoldenrod"
_FONT = {"fontname": "times", "fontsize": "20"}

_warned_no_dot = False


def _node_id(source: int) -> str:
    """Node id of an edge source: inputs ``in0``/``in1``, intermediate node k - 2 ``n{k-2}``."""
    return f"in{source}" if source < 2 else f"n{source - 2}"


def genotype_to_graph(
    genotype: Genotype,
    *,
    name: str = "cell",
    inputs: Tuple[str, str] = ("s0", "s1"),
    caption: Optional[str] = None,
) -> graphviz.Digraph:
    """A genotype's cell as a left-to-right digraph, as DARTS plots it.

    The two cell inputs (green) feed intermediate nodes ``0 .. n-1`` (blue) along edges labelled
    with their op; every intermediate node feeds the output ``out`` (yellow), their concatenation.
    Node ids (``in0``, ``in1``, ``n0``..., ``out``) are distinct from the labels, so the two inputs
    may carry the same label.

    Args:
        genotype: the cell; ``genotype.normal`` lists the nodes, each two ``(op_name, source)``
            edges where source 0 is the first input, 1 the second and k >= 2 node k - 2.
        name: the graph's name.
        inputs: labels of the first and second cell inputs (s0, s1).
        caption: text shown under the cell, or ``None`` for none.

    Returns:
        The graph; ``graph.source`` is its DOT source.

    Raises:
        ValueError: if ``inputs`` does not hold exactly two labels.
    """
    if len(inputs) != 2:
        raise ValueError(f"inputs must be two labels (s0, s1), got {inputs!r}")
    graph = graphviz.Digraph(
        name,
        graph_attr={"rankdir": "LR", **({"label": caption, "labelloc": "b"} if caption else {})},
        node_attr={
            "style": "filled",
            "shape": "rect",
            "height": "0.5",
            "width": "0.5",
            "penwidth": "2",
            **_FONT,
        },
        edge_attr=_FONT,
    )
    if caption:
        graph.graph_attr.update(_FONT)
    for i, label in enumerate(inputs):
        graph.node(_node_id(i), label, fillcolor=_INPUT_COLOR)
    for k in range(genotype.num_nodes):
        graph.node(f"n{k}", str(k), fillcolor=_NODE_COLOR)
    graph.node("out", "out", fillcolor=_OUTPUT_COLOR)
    for k, node in enumerate(genotype.normal):
        for op, source in node:
            graph.edge(_node_id(source), f"n{k}", label=op)
    for k in range(genotype.num_nodes):
        graph.edge(f"n{k}", "out")
    return graph


def _warn_no_dot() -> None:
    """Log, once per process, that PNG plots need Graphviz."""
    global _warned_no_dot
    if not _warned_no_dot:
        _warned_no_dot = True
        logger.warning(
            "Graphviz's `dot` program was not found: writing cell plots as .dot source only. "
            "PNG plots need Graphviz (`apt-get install graphviz` or conda `graphviz`)."
        )


def plot_genotype(
    genotype: Genotype,
    path_stem: Union[str, "os.PathLike[str]"],
    *,
    name: str = "cell",
    inputs: Tuple[str, str] = ("s0", "s1"),
    caption: Optional[str] = None,
) -> Dict[str, str]:
    """Write a genotype's cell as ``<path_stem>.dot`` and, with Graphviz, ``<path_stem>.png``.

    Both files are written atomically (see :func:`fad.utils.atomic_open`); the directory is
    created if needed. If the ``dot`` program is not installed, only the DOT source is written
    and a warning is logged once per process.

    Args:
        genotype: the cell, as for :func:`genotype_to_graph`.
        path_stem: output path without extension.
        name: the graph's name.
        inputs: labels of the first and second cell inputs (s0, s1).
        caption: text shown under the cell, or ``None`` for none.

    Returns:
        ``{"dot": dot_path}``, plus ``"png": png_path`` when the PNG was rendered.

    Raises:
        RuntimeError: if ``dot`` is installed but fails, naming its error.
    """
    stem = os.fspath(path_stem)
    graph = genotype_to_graph(genotype, name=name, inputs=inputs, caption=caption)
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
