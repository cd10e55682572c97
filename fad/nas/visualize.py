"""Graphviz plots of a genotype's cell, in the style of the DARTS / pt.darts ``visualize.py``.

The DOT source is written here as text (no ``graphviz`` Python package, no torch); the Graphviz
``dot`` program, when installed, renders it to PNG. Without ``dot`` only the ``.dot`` file is
written and one warning per process says how to get PNGs.

The FAD heads read the FPN feature twice in the box tower and the box tower's output plus the FPN
feature in the class tower, so their plots use ``inputs=("feature", "feature")`` and
``inputs=("bbox_feature", "feature")``.
"""

import logging
import os
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

from fad.utils import atomic_path

if TYPE_CHECKING:
    from fad.genotypes import Genotype

__all__ = ["genotype_to_dot", "plot_genotype"]

logger = logging.getLogger(__name__)

#: Seconds ``dot`` may take to render one cell.
DOT_TIMEOUT_S = 60

# pt.darts colours: inputs green, intermediate nodes blue, the output yellow.
_INPUT_COLOR = "darkseagreen2"
_NODE_COLOR = "lightblue"
_OUTPUT_COLOR = "palegoldenrod"
_FONT = 'fontname="times", fontsize=20'
_OUTPUT_ID = "out"

_warned_no_dot = False


def _quote(text: str) -> str:
    """A DOT double-quoted string showing ``text`` literally as a label.

    Backslashes are doubled (a lone one would start a Graphviz label escape such as ``\\N``),
    double quotes are escaped and line breaks become centred ``\\n`` breaks.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


def _source_id(source: int) -> str:
    """DOT node id of an edge source: inputs ``in0``/``in1``, intermediate node k-2 ``n{k-2}``."""
    return f"in{source}" if source < 2 else f"n{source - 2}"


def genotype_to_dot(
    genotype: "Genotype",
    *,
    name: str = "cell",
    inputs: Tuple[str, str] = ("s0", "s1"),
    caption: Optional[str] = None,
) -> str:
    """DOT source of a genotype's cell: a left-to-right digraph as DARTS plots it.

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
        The DOT source, ending with a newline.

    Raises:
        ValueError: if ``inputs`` does not hold exactly two labels.
    """
    if len(inputs) != 2:
        raise ValueError(f"inputs must be two labels (s0, s1), got {inputs!r}")
    lines: List[str] = [f"digraph {_quote(name)} {{", "  rankdir=LR;"]
    if caption is not None:
        lines.append(f"  graph [label={_quote(caption)}, labelloc=b, {_FONT}];")
    lines += [
        f"  node [style=filled, shape=rect, height=0.5, width=0.5, penwidth=2, {_FONT}];",
        f"  edge [{_FONT}];",
    ]
    for i, label in enumerate(inputs):
        lines.append(f'  "{_source_id(i)}" [label={_quote(label)}, fillcolor={_INPUT_COLOR}];')
    for k in range(len(genotype.normal)):
        lines.append(f'  "n{k}" [label="{k}", fillcolor={_NODE_COLOR}];')
    lines.append(f'  "{_OUTPUT_ID}" [label="out", fillcolor={_OUTPUT_COLOR}];')
    for k, node in enumerate(genotype.normal):
        for op, source in node:
            lines.append(f'  "{_source_id(source)}" -> "n{k}" [label={_quote(op)}];')
    for k in range(len(genotype.normal)):
        lines.append(f'  "n{k}" -> "{_OUTPUT_ID}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader never sees a partial file."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def _render_png(dot: str, dot_path: str, png_path: str) -> None:
    """Render ``dot_path`` to ``png_path`` with the ``dot`` program at path ``dot``, atomically.

    Raises:
        RuntimeError: naming the command and its stderr if ``dot`` cannot run, fails or times out.
    """
    with atomic_path(png_path) as tmp:
        cmd = [dot, "-Tpng", "-o", tmp, dot_path]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=DOT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"`{shlex.join(cmd)}` could not render the cell: {e}") from e
        if result.returncode != 0:
            raise RuntimeError(
                f"`{shlex.join(cmd)}` failed with exit code {result.returncode}: "
                f"{result.stderr.strip() or '(no stderr)'}"
            )


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
    genotype: "Genotype",
    path_stem: Union[str, "os.PathLike[str]"],
    *,
    name: str = "cell",
    inputs: Tuple[str, str] = ("s0", "s1"),
    caption: Optional[str] = None,
) -> Dict[str, str]:
    """Write a genotype's cell as ``<path_stem>.dot`` and, with Graphviz, ``<path_stem>.png``.

    Both files are written atomically (a temporary file in the same directory, then
    :func:`os.replace`); the directory is created if needed. If the ``dot`` program is not on the
    ``PATH``, only the DOT source is written and a warning is logged once per process.

    Args:
        genotype: the cell, as for :func:`genotype_to_dot`.
        path_stem: output path without extension.
        name: the graph's name.
        inputs: labels of the first and second cell inputs (s0, s1).
        caption: text shown under the cell, or ``None`` for none.

    Returns:
        ``{"dot": dot_path}``, plus ``"png": png_path`` when the PNG was rendered.

    Raises:
        RuntimeError: if ``dot`` is installed but fails, naming the command and its stderr.
    """
    stem = os.fspath(path_stem)
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    paths = {"dot": stem + ".dot"}
    _write_atomic(
        paths["dot"], genotype_to_dot(genotype, name=name, inputs=inputs, caption=caption)
    )
    dot = shutil.which("dot")
    if dot is None:
        _warn_no_dot()
        return paths
    _render_png(dot, paths["dot"], stem + ".png")
    paths["png"] = stem + ".png"
    return paths
