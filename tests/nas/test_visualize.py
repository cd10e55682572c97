"""Cell plots: a genotype's graph, its DOT source and its PNG rendering (fad.nas.visualize)."""

import json
import logging
import os
import shutil
import subprocess

import graphviz
import pytest
import torch

from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS, primitives
from fad.nas import visualize
from fad.nas.visualize import genotype_to_graph, plot_alpha_history, plot_genotype

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(
    DOT is None, reason="Graphviz's `dot` program is not installed (apt-get install graphviz)"
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _node_id(source_index):
    return f"in{source_index}" if source_index < 2 else f"n{source_index - 2}"


def _expected_edges(genotype):
    op_edges = {
        (_node_id(src), f"n{k}", op) for k, node in enumerate(genotype.normal) for op, src in node
    }
    return op_edges | {(f"n{k}", "out", None) for k in range(genotype.num_nodes)}


def _parsed(source, tmp_path):
    """The graph as Graphviz itself reads the source: (graph attributes, nodes, edges)."""
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
    visualize._warn_no_dot.cache_clear()


@pytest.mark.parametrize("genotype", [FAD_PAPER_BOX, FAD_PAPER_CLS])
def test_graph_has_every_op_edge_and_concat_edge(genotype):
    graph = genotype_to_graph(genotype, name="cell")
    assert graph.name == "cell" and graph.graph_attr["rankdir"] == "LR"
    lines = [line.strip() for line in graph.body]
    for src, dst, label in _expected_edges(genotype):
        attrs = f' [label="{label}"]' if label and "+" in label else f" [label={label}]"
        assert f"{src} -> {dst}{attrs if label else ''}" in lines
    assert sum("->" in line for line in lines) == 2 * genotype.num_nodes + genotype.num_nodes


def test_inputs_are_named_c_k_2_and_c_k_1_and_the_first_cells_inputs_may_be_shown():
    lines = [line.strip() for line in genotype_to_graph(FAD_PAPER_BOX).body]
    assert "in0 [label=<c<SUB>k-2</SUB>> fillcolor=darkseagreen2]" in lines
    assert "in1 [label=<c<SUB>k-1</SUB>> fillcolor=darkseagreen2]" in lines
    graph = genotype_to_graph(FAD_PAPER_BOX, first_inputs=("feature", "feature"))
    lines = [line.strip() for line in graph.body]
    for i, sub in enumerate(("k-2", "k-1")):  # two input nodes, though they read one feature
        first = '<BR/><FONT POINT-SIZE="14">cell 1: feature</FONT>'
        assert f"in{i} [label=<c<SUB>{sub}</SUB>{first}> fillcolor=darkseagreen2]" in lines


def test_first_inputs_must_be_two_names():
    with pytest.raises(ValueError, match="two names"):
        genotype_to_graph(FAD_PAPER_BOX, first_inputs=("feature",))


@needs_dot
def test_graphviz_reads_the_graph_as_drawn(tmp_path):
    graph = genotype_to_graph(
        FAD_PAPER_CLS, name="cls", first_inputs=("<bbox_feature>", "feature"), caption="FAD cls"
    )
    attrs, nodes, edges = _parsed(graph.source, tmp_path)
    assert attrs["name"] == "cls" and attrs["label"] == "FAD cls"
    assert set(nodes) == {"in0", "in1", "n0", "n1", "n2", "out"}
    # An HTML label, the input's name escaped in it.
    assert nodes["in0"]["label"] == (
        'c<SUB>k-2</SUB><BR/><FONT POINT-SIZE="14">cell 1: &lt;bbox_feature&gt;</FONT>'
    )
    assert nodes["in0"]["fillcolor"] == "darkseagreen2"
    assert nodes["n1"]["fillcolor"] == "lightblue"
    assert nodes["out"]["fillcolor"] == "palegoldenrod"
    assert edges == _expected_edges(FAD_PAPER_CLS)


@needs_dot
def test_plot_renders_a_png(tmp_path, warned_reset, caplog):
    stem = tmp_path / "plots" / "cls_cell"
    kwargs = dict(name="cls", first_inputs=("bbox_feature", "feature"), caption="FAD class tower")
    with caplog.at_level(logging.WARNING, logger=visualize.__name__):
        paths = plot_genotype(FAD_PAPER_CLS, str(stem), **kwargs)
    assert paths == {"dot": f"{stem}.dot", "png": f"{stem}.png"}
    with open(paths["png"], "rb") as f:
        assert f.read(8) == PNG_MAGIC
    with open(paths["dot"], encoding="utf-8") as f:
        assert f.read() == genotype_to_graph(FAD_PAPER_CLS, **kwargs).source
    assert sorted(os.listdir(stem.parent)) == ["cls_cell.dot", "cls_cell.png"]  # no temp files
    assert not caplog.records


def test_missing_dot_writes_the_source_and_warns_once(tmp_path, monkeypatch, warned_reset, caplog):
    def no_dot(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", no_dot)
    with caplog.at_level(logging.WARNING, logger=visualize.__name__):
        first = plot_genotype(FAD_PAPER_BOX, str(tmp_path / "box"))
        second = plot_genotype(FAD_PAPER_CLS, tmp_path / "cls")
    assert first == {"dot": str(tmp_path / "box.dot")}
    assert second == {"dot": str(tmp_path / "cls.dot")}
    assert sorted(os.listdir(tmp_path)) == ["box.dot", "cls.dot"]
    assert (tmp_path / "box.dot").read_text() == genotype_to_graph(FAD_PAPER_BOX).source
    warnings = [r for r in caplog.records if r.name == visualize.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "apt-get install graphviz" in warnings[0].getMessage()


def test_failing_dot_raises_naming_the_error_and_keeps_the_source(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise graphviz.CalledProcessError(1, ["dot", "-Tpng"], stderr=b"syntax error in line 1")

    monkeypatch.setattr(graphviz.Digraph, "pipe", failing)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="could not render .*box.dot"):
        plot_genotype(FAD_PAPER_BOX, str(out / "box"))
    assert os.listdir(out) == ["box.dot"]  # the source is kept, no PNG or temp file is left


def test_files_get_the_users_normal_permissions(tmp_path, monkeypatch):
    monkeypatch.setattr(graphviz.Digraph, "pipe", lambda *a, **k: PNG_MAGIC)
    old = os.umask(0o022)
    try:
        paths = plot_genotype(FAD_PAPER_BOX, str(tmp_path / "box"))
    finally:
        os.umask(old)
    for path in paths.values():
        assert os.stat(path).st_mode & 0o777 == 0o644, path


def _history(num_samples, *, num_ops=11, seed=0):
    """Softmax weights of a 3-node tower (9 edges) drifting over ``num_samples`` samples."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_samples, 9, num_ops, generator=g).cumsum(0) * 0.2
    return logits.softmax(-1)


def test_alpha_history_plot_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "alphas.png"
    weights = {"box": _history(6), "cls": _history(6, seed=1)}
    out = plot_alpha_history(
        [0, 10, 20, 30, 40, 50],
        weights,
        path,
        genotypes={"box": FAD_PAPER_BOX, "cls": FAD_PAPER_CLS},
        title="a search",
    )
    assert out == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.listdir(path.parent) == ["alphas.png"]  # no temp file left


def test_alpha_history_plot_of_one_tower_one_sample_and_the_dil3_space(tmp_path):
    path = tmp_path / "alphas.png"
    plot_alpha_history([0], {"cls": _history(1, num_ops=13)}, path, dil3=True)
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "iterations, weights, message",
    [
        ([0, 1], {"box": _history(3)}, r"box tower must have shape \(2, edges, 11\)"),
        ([0], {"box": _history(1, num_ops=13)}, r"must have shape \(1, edges, 11\)"),
        ([0], {"box": _history(1)[:, :8]}, "8 edges do not make a cell"),
        ([0], {}, "no tower"),
    ],
)
def test_alpha_history_plot_refuses_weights_that_do_not_fit(tmp_path, iterations, weights, message):
    with pytest.raises(ValueError, match=message):
        plot_alpha_history(iterations, weights, tmp_path / "alphas.png")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("dil3", [False, True])
def test_alphas_png_tells_every_candidate_apart(dil3):
    # A hue per variant, solid for std and dashed for sinSep: no two candidates share a style.
    styles = [tuple(visualize._line_style(op).items()) for op in primitives(dil3=dil3)]
    assert len(set(styles)) == len(styles)
    assert visualize._KEPT_COLOR not in {dict(s)["color"] for s in styles[:-1]}


def test_alphas_png_names_the_cell_inputs_as_the_cell_plots_do():
    assert [visualize._source_label(s) for s in range(4)] == [
        "$c_{k-2}$",
        "$c_{k-1}$",
        "node 0",
        "node 1",
    ]
