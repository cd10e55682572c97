"""Cell plots: DOT source of a genotype and its PNG rendering (fad.nas.visualize)."""

import json
import logging
import os
import re
import shutil
import subprocess

import pytest

from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS
from fad.nas import visualize
from fad.nas.visualize import genotype_to_dot, plot_genotype

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed")

EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[label="((?:[^"\\]|\\.)*)"\])?;$')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _edges(source):
    """(source id, target id, label or None) of every edge statement in a DOT source."""
    return [m.groups() for m in map(EDGE.match, source.splitlines()) if m]


def _node_id(source_index):
    return f"in{source_index}" if source_index < 2 else f"n{source_index - 2}"


def _expected_edges(genotype):
    op_edges = [
        (_node_id(src), f"n{k}", op) for k, node in enumerate(genotype.normal) for op, src in node
    ]
    concat_edges = [(f"n{k}", "out", None) for k in range(genotype.num_nodes)]
    return op_edges + concat_edges


def _render_json(source, tmp_path):
    """Parse a DOT source with Graphviz itself: the graph as ``dot -Tjson0`` reports it."""
    path = tmp_path / "parse.dot"
    path.write_text(source, encoding="utf-8")
    out = subprocess.run(
        [DOT, "-Tjson0", str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    graph = json.loads(out.stdout)
    nodes = {o["_gvid"]: o for o in graph["objects"]}
    edges = {
        (nodes[e["tail"]]["name"], nodes[e["head"]]["name"], e.get("label") or None)
        for e in graph["edges"]
    }
    return graph, {o["name"]: o for o in nodes.values()}, edges


@pytest.fixture
def warned_reset(monkeypatch):
    """Each test starts as if no warning about a missing `dot` had been logged yet."""
    monkeypatch.setattr(visualize, "_warned_no_dot", False)


@pytest.mark.parametrize("genotype", [FAD_PAPER_BOX, FAD_PAPER_CLS])
def test_dot_has_every_op_edge_and_concat_edge(genotype):
    source = genotype_to_dot(genotype)
    assert source.startswith('digraph "cell" {\n  rankdir=LR;\n')
    assert source.endswith("}\n") and source.count("{") == source.count("}")
    assert _edges(source) == _expected_edges(genotype)
    for node_id, color in [
        ("in0", "darkseagreen2"),
        ("in1", "darkseagreen2"),
        ("n0", "lightblue"),
        ("n2", "lightblue"),
        ("out", "palegoldenrod"),
    ]:
        assert re.search(rf'^  "{node_id}" \[label=".*", fillcolor={color}\];$', source, re.M)


def test_equal_input_labels_keep_two_input_nodes():
    source = genotype_to_dot(FAD_PAPER_BOX, inputs=("feature", "feature"), name="box")
    assert source.startswith('digraph "box" {')
    assert '"in0" [label="feature"' in source and '"in1" [label="feature"' in source
    sources = {src for src, _, _ in _edges(source)}
    assert {"in0", "in1"} <= sources


def test_labels_are_escaped():
    source = genotype_to_dot(
        FAD_PAPER_CLS, inputs=('a "quoted" in', "back\\slash"), caption="line 1\nline 2"
    )
    assert r'"in0" [label="a \"quoted\" in"' in source
    assert r'"in1" [label="back\\slash"' in source
    assert r'graph [label="line 1\nline 2", labelloc=b,' in source
    assert '"in1" -> "n0" [label="sinSep_conv_3x3_x2+dil_conv_3x3"];' in source


def test_inputs_must_be_two_labels():
    with pytest.raises(ValueError, match="two labels"):
        genotype_to_dot(FAD_PAPER_BOX, inputs=("feature",))


@needs_dot
def test_graphviz_parses_the_dot_source_as_written(tmp_path):
    inputs = ('bbox_"feature"', "feature\\x")
    source = genotype_to_dot(FAD_PAPER_CLS, name="cls", inputs=inputs, caption="FAD cls")
    graph, nodes, edges = _render_json(source, tmp_path)
    assert graph["name"] == "cls" and graph["label"] == "FAD cls"
    assert set(nodes) == {"in0", "in1", "n0", "n1", "n2", "out"}
    # The DOT parser unquotes; a label's backslash stays escaped until the label is drawn.
    assert nodes["in0"]["label"] == 'bbox_"feature"' and nodes["in1"]["label"] == "feature\\\\x"
    assert nodes["out"]["fillcolor"] == "palegoldenrod"
    assert edges == set(_expected_edges(FAD_PAPER_CLS))


@needs_dot
def test_plot_renders_a_png(tmp_path, warned_reset, caplog):
    stem = tmp_path / "plots" / "cls_cell"
    kwargs = dict(name="cls", inputs=("bbox_feature", "feature"), caption="FAD class tower")
    with caplog.at_level(logging.WARNING, logger=visualize.__name__):
        paths = plot_genotype(FAD_PAPER_CLS, str(stem), **kwargs)
    assert paths == {"dot": f"{stem}.dot", "png": f"{stem}.png"}
    with open(paths["png"], "rb") as f:
        assert f.read(8) == PNG_MAGIC
    with open(paths["dot"], encoding="utf-8") as f:
        assert f.read() == genotype_to_dot(FAD_PAPER_CLS, **kwargs)
    assert sorted(os.listdir(stem.parent)) == ["cls_cell.dot", "cls_cell.png"]  # no temp files
    assert not caplog.records


def test_missing_dot_writes_the_source_and_warns_once(tmp_path, monkeypatch, warned_reset, caplog):
    monkeypatch.setattr(visualize.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger=visualize.__name__):
        first = plot_genotype(FAD_PAPER_BOX, str(tmp_path / "box"))
        second = plot_genotype(FAD_PAPER_CLS, tmp_path / "cls")
    assert first == {"dot": str(tmp_path / "box.dot")}
    assert second == {"dot": str(tmp_path / "cls.dot")}
    assert sorted(os.listdir(tmp_path)) == ["box.dot", "cls.dot"]
    assert (tmp_path / "box.dot").read_text(encoding="utf-8") == genotype_to_dot(FAD_PAPER_BOX)
    warnings = [r for r in caplog.records if r.name == visualize.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "apt-get install graphviz" in warnings[0].getMessage()


def test_failing_dot_raises_naming_the_command_and_stderr(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(visualize.shutil, "which", lambda name: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="syntax error in line 1") as info:
        plot_genotype(FAD_PAPER_BOX, str(out / "box"))
    assert f"{fake} -Tpng" in str(info.value) and "exit code 1" in str(info.value)
    assert os.listdir(out) == ["box.dot"]  # the source is kept, no PNG or temp file is left
