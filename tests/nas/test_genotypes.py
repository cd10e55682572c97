"""Genotype text, file and plain-data forms; derivation from alphas (docs/METHOD.md section 7)."""

import os
import random
import subprocess
import sys

import pytest
import torch

from fad import genotypes as gt
from fad.genotypes import Genotype, derive_genotype, load_genotype_file, save_genotype_file

# The four architectures of the original README, verbatim.
PUBLISHED = [
    "Genotype(normal=[[('sinSep_conv_3x3_x3', 0), ('std_conv_3x3_x3', 1)], [('std_conv_3x3', 2), ('sinSep_conv_3x3+dil_conv_3x3', 1)], [('sinSep_conv_3x3_x2', 2), ('std_conv_3x3_x2', 3)]], normal_concat=range(2, 5))",  # noqa: E501
    "Genotype(normal=[[('sinSep_conv_3x3_x2+dil_conv_3x3', 1), ('std_conv_3x3_x3', 0)], [('sinSep_conv_3x3_x2+dil_conv_3x3', 0), ('sinSep_conv_3x3', 2)], [('sinSep_conv_3x3_x2', 2), ('std_conv_3x3', 3)]], normal_concat=range(2, 5))",  # noqa: E501
    "Genotype(normal=[[('std_conv_3x3_x3', 0), ('std_conv_3x3_x2', 1)], [('std_conv_3x3', 0), ('std_conv_3x3+dil_conv_3x3', 2)], [('std_conv_3x3_x2+dil_conv_3x3', 3), ('std_conv_3x3+dil_conv_3x3', 2)]], normal_concat=range(2, 5))",  # noqa: E501
    "Genotype(normal=[[('std_conv_3x3_x3', 1), ('sinSep_conv_3x3+dil_conv_3x3', 0)], [('sinSep_conv_3x3', 0), ('sinSep_conv_3x3+dil_conv_3x3', 2)], [('std_conv_3x3', 1), ('std_conv_3x3_x3', 0)]], normal_concat=range(2, 5))",  # noqa: E501
]


@pytest.mark.parametrize("text", PUBLISHED)
def test_published_architectures_round_trip_exactly(text):
    g = Genotype.from_str(text)
    assert str(g) == text
    assert gt.as_genotype(g.to_plain(), num_nodes=3) == gt.as_genotype(text, num_nodes=3) == g


def test_presets_are_the_published_architectures():
    presets = [gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS, gt.FAD_OTHER_BOX, gt.FAD_OTHER_CLS]
    assert [str(g) for g in presets] == PUBLISHED


def test_genotype_fields():
    g = gt.FAD_PAPER_BOX
    assert g.normal[1] == [("std_conv_3x3", 2), ("sinSep_conv_3x3+dil_conv_3x3", 1)]
    assert g.normal_concat == range(2, 5) and g.num_nodes == 3
    plain = g.to_plain()
    assert plain["normal_concat"] == [2, 3, 4]
    assert plain["normal"][0] == [["sinSep_conv_3x3_x3", 0], ["std_conv_3x3_x3", 1]]


def _good(normal="[[('std_conv_3x3', 0), ('std_conv_3x3', 1)]]", concat="range(2, 3)"):
    return f"Genotype(normal={normal}, normal_concat={concat})"


BAD = [
    pytest.param(
        _good("[[('sep_conv_3x3', 0), ('std_conv_3x3', 1)]]"),
        "unknown op 'sep_conv_3x3'",
        id="unknown op",
    ),
    pytest.param(
        _good("[[('std_conv_3x3_x4', 0), ('std_conv_3x3', 1)]]"),
        "unknown op 'std_conv_3x3_x4'; did you mean 'std_conv_3x3_x3'\\?$",
        id="misspelled op",
    ),
    pytest.param(
        _good("[[('sinsep_conv_3x3+dil_conv_3x3', 0), ('std_conv_3x3', 1)]]"),
        "did you mean 'sinSep_conv_3x3\\+dil_conv_3x3'\\?$",
        id="op in the wrong case",
    ),
    pytest.param(
        _good("[[('none', 0), ('std_conv_3x3', 1)]]"),
        "unknown op 'none'; known ops: std_conv_3x3, std_conv_3x3\\+dil_conv_3x3, ",
        id="none op",
    ),
    pytest.param(
        _good("[[(['std_conv_3x3'], 0), ('std_conv_3x3', 1)]]"), "unknown op \\[", id="list op"
    ),
    pytest.param(
        _good("[[('std_conv_3x3', 0), ('std_conv_3x3', 2)]]"),
        "node 0 edge 1: source index 2 is not available",
        id="source too large",
    ),
    pytest.param(
        _good("[[('std_conv_3x3', -1), ('std_conv_3x3', 1)]]"),
        "source index -1",
        id="negative source",
    ),
    pytest.param(
        _good("[[('std_conv_3x3', True), ('std_conv_3x3', 1)]]"),
        "source index True is not available",
        id="bool source",
    ),
    pytest.param(
        _good("[[('std_conv_3x3', 0)]]"), "node 0 must have exactly 2 edges", id="one edge"
    ),
    pytest.param(
        _good("[[('std_conv_3x3', 0), ('std_conv_3x3', 1), ('std_conv_3x3', 0)]]"),
        "exactly 2 edges",
        id="three edges",
    ),
    pytest.param(_good("[]", "range(2, 2)"), "non-empty", id="no nodes"),
    pytest.param(
        _good(concat="range(2, 5)"), r"normal_concat must be range\(2, 3\)", id="range mismatch"
    ),
    pytest.param(_good(concat="range(0, 3)"), "normal_concat", id="range from 0"),
    pytest.param(_good(concat="[2]"), "normal_concat must be range", id="concat not range"),
    pytest.param(_good("[[(open('/etc/passwd').read(), 0)]]"), "only literals", id="function call"),
    pytest.param("__import__('os').system('touch pwned')", "expected Genotype", id="import"),
    pytest.param(_good("(lambda: 1)()"), "only literals", id="lambda"),
    pytest.param(_good(concat="range(2, os.sep)"), "only literals", id="attribute"),
    pytest.param(
        "Genotype(normal=[[('std_conv_3x3', 0), ('std_conv_3x3', 1)]], normal_concat=range(2, 3), "
        "reduce=[])",
        r"exactly the keyword arguments .*, got Genotype\(normal=\.\.\., normal_concat=\.\.\., "
        r"reduce=\.\.\.\)",
        id="extra keyword",
    ),
    pytest.param(
        "Genotype([], range(2, 2))",
        r"keyword arguments .*got Genotype\(\.\.\., \.\.\.\)",
        id="positional",
    ),
    pytest.param("Genotype(normal=[[", "syntax error", id="syntax"),
    pytest.param("x = 1; Genotype()", "syntax error", id="two statements"),
    pytest.param(42, "must be a string", id="not a string"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_malformed_and_malicious_text_raises_value_error_without_side_effects(
    text, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        Genotype.from_str(text)
    assert list(tmp_path.iterdir()) == []  # nothing ran: no file was touched


def test_wrong_number_of_nodes_for_the_configured_cell():
    with pytest.raises(ValueError, match="expected 4 nodes, the genotype has 3"):
        gt.as_genotype(PUBLISHED[0], num_nodes=4)
    with pytest.raises(ValueError, match="expected 2 nodes"):
        gt.as_genotype(gt.FAD_PAPER_CLS, num_nodes=2)


def test_plain_data_errors():
    plain = gt.FAD_PAPER_BOX.to_plain()
    with pytest.raises(ValueError, match="exactly the keys"):
        gt.as_genotype({"normal": plain["normal"]})
    with pytest.raises(
        ValueError, match=r"normal_concat must be range\(2, 5\) or \[2, 3, 4\], got \[2, 3, 5\]"
    ):
        gt.as_genotype({**plain, "normal_concat": [2, 3, 5]})
    plain["normal"][2][0] = ["conv_9x9", 2]
    with pytest.raises(ValueError, match="node 2 edge 0: unknown op 'conv_9x9'"):
        gt.as_genotype(plain)
    with pytest.raises(ValueError, match="a genotype must be"):
        gt.as_genotype(3.0)


def test_plain_data_survives_omegaconf_yaml(tmp_path):
    omegaconf = pytest.importorskip("omegaconf", reason="omegaconf comes with detectron2")
    cfg = omegaconf.OmegaConf.create({"g": gt.FAD_PAPER_CLS.to_plain(), "t": str(gt.FAD_PAPER_BOX)})
    path = tmp_path / "c.yaml"
    omegaconf.OmegaConf.save(cfg, path)
    back = omegaconf.OmegaConf.load(path)
    assert gt.as_genotype(back.g) == gt.FAD_PAPER_CLS
    assert gt.as_genotype(back.t) == gt.FAD_PAPER_BOX


def test_genotype_file_labels_each_line_with_its_tower(tmp_path):
    path = tmp_path / "out" / "genotype.log"
    save_genotype_file(str(path), {"box": gt.FAD_PAPER_BOX, "cls": str(gt.FAD_PAPER_CLS)})
    assert path.read_text() == f"{PUBLISHED[0]}  # box tower\n{PUBLISHED[1]}  # class tower\n"
    assert [p.name for p in path.parent.iterdir()] == ["genotype.log"]  # no temp file left
    assert tuple(load_genotype_file(str(path)).values()) == (gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS)
    # A line of the file is a genotype text as it is (what `sed -n 1p genotype.log` gives).
    assert Genotype.from_str(path.read_text().splitlines()[0]) == gt.FAD_PAPER_BOX


# genotype.log files as earlier versions wrote them: plain lines, comment lines, blank lines.
OLD_FILES = [
    pytest.param(f"{PUBLISHED[2]}\n{PUBLISHED[3]}\n", (2, 3), id="two lines"),
    pytest.param(f"{PUBLISHED[2]}\n{PUBLISHED[3]}", (2, 3), id="no final newline"),
    pytest.param(f"{PUBLISHED[0]}\r\n{PUBLISHED[1]}\r\n", (0, 1), id="crlf"),
    pytest.param(
        "# FAD, ECCV 2020\n# Line 1: box regression tower. Line 2: classification tower.\n"
        f"{PUBLISHED[0]}\n{PUBLISHED[1]}\n",
        (0, 1),
        id="header comments",
    ),
    pytest.param(
        f"# box\n\n{PUBLISHED[2]}\n   \n  # cls\n{PUBLISHED[3]}\n", (2, 3), id="comments, blanks"
    ),
    pytest.param(f"{PUBLISHED[0]}\nNone\n", (0, None), id="class tower not searched"),
    pytest.param(f"None\n{PUBLISHED[1]}\n", (None, 1), id="box tower not searched"),
]


@pytest.mark.parametrize("text, expected", OLD_FILES)
def test_genotype_files_of_earlier_versions_load(tmp_path, text, expected):
    path = tmp_path / "genotype.log"
    path.write_bytes(text.encode())
    presets = [gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS, gt.FAD_OTHER_BOX, gt.FAD_OTHER_CLS]
    assert tuple(load_genotype_file(str(path)).values()) == tuple(
        None if i is None else presets[i] for i in expected
    )


def test_genotype_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "genotype.log"
    path.write_text("# header\n" + PUBLISHED[0] + "\n\nGenotype(normal=[[('x', 0)]])\n")
    with pytest.raises(ValueError, match=rf"{path} line 4: "):
        load_genotype_file(str(path))
    path.write_text(PUBLISHED[0] + "\n")
    with pytest.raises(ValueError, match="2 unlabelled lines .* found 1 lines, 0 labelled"):
        load_genotype_file(str(path))
    path.write_text("\n".join(PUBLISHED[:3]))
    with pytest.raises(ValueError, match="found 3 lines"):
        load_genotype_file(str(path))
    with pytest.raises(FileNotFoundError):
        load_genotype_file(str(tmp_path / "missing.log"))


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "genotype.log"
    save_genotype_file(str(path), {"box": gt.FAD_PAPER_BOX, "cls": gt.FAD_PAPER_CLS})
    with pytest.raises(ValueError):
        save_genotype_file(str(path), {"box": gt.FAD_PAPER_BOX, "cls": "Genotype("})
    assert tuple(load_genotype_file(str(path)).values()) == (gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS)
    assert os.listdir(tmp_path) == ["genotype.log"]


def _alphas_for(genotype, *, num_ops=11):
    """Alphas whose derivation is ``genotype``: its edges strong, others weak."""
    alphas = [torch.zeros(2 + i, num_ops) for i in range(genotype.num_nodes)]
    for i, node in enumerate(genotype.normal):
        for rank, (op, src) in enumerate(node):
            alphas[i][src, gt.PRIMITIVES.index(op)] = 5.0 - rank
    return alphas


@pytest.mark.parametrize("genotype", [gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS, gt.FAD_OTHER_CLS])
def test_derivation_recovers_the_strongest_edges(genotype):
    assert derive_genotype(_alphas_for(genotype)) == genotype


def test_derivation_ignores_none_and_ranks_softmax_not_raw_alphas():
    # Node 0 has edges from s0 and s1 only; add a node-1 alpha with three edges.
    a0 = torch.zeros(2, 11)
    a0[0, 10] = 100.0  # 'none' dominates edge 0 but never counts as an op
    a0[0, 0] = 1.0
    a0[1, 5] = 0.5
    # Edge 0 of node 1: raw best 3.0 but spread (other ops high too) -> smaller softmax weight.
    a1 = torch.zeros(3, 11)
    a1[0, :10] = 2.9
    a1[0, 2] = 3.0
    a1[1, 4] = 2.0  # raw 2.0, but alone: largest softmax weight
    a1[2, 7] = 1.0
    soft = derive_genotype([a0, a1], rank="softmax")
    raw = derive_genotype([a0, a1], rank="raw")
    # Softmax: edge 0's 'none' takes nearly all its weight, so edge 1 ranks first.
    assert soft.normal[0] == [("sinSep_conv_3x3", 1), ("std_conv_3x3", 0)]
    assert raw.normal[0] == [("std_conv_3x3", 0), ("sinSep_conv_3x3", 1)]
    # Node 1 keeps different edges under the two rankings.
    assert soft.normal[1] == [("std_conv_3x3_x3", 1), ("sinSep_conv_3x3_x2", 2)]
    assert raw.normal[1] == [("std_conv_3x3_x2", 0), ("std_conv_3x3_x3", 1)]
    with pytest.raises(ValueError, match="rank must be"):
        derive_genotype([a0], rank="max")
    with pytest.raises(ValueError, match=r"alpha of node 1 must have shape \(3, 11\)"):
        derive_genotype([a0, a0])


def test_derivation_in_the_dil3_space():
    a = [torch.zeros(2 + i, 13) for i in range(3)]
    for node in a:
        node[0, gt.PRIMITIVES_DIL3.index("std_conv_3x3+dil_conv_3x3_r3")] = 3.0
        node[1, 0] = 2.0
    g = derive_genotype(a, dil3=True)
    assert g.normal[0][0] == ("std_conv_3x3+dil_conv_3x3_r3", 0)
    assert Genotype.from_str(str(g)) == g


@pytest.mark.parametrize("folder", ["fad/genotypes", "projects/FAD/genotypes"])
def test_shipped_genotype_files_are_the_published_pairs(root, folder):
    # fad/genotypes holds the files (package data); projects/FAD/genotypes links to them.
    assert tuple(
        load_genotype_file(str(root / folder / "fad_paper.log"), num_nodes=3).values()
    ) == (
        gt.FAD_PAPER_BOX,
        gt.FAD_PAPER_CLS,
    )
    assert tuple(
        load_genotype_file(str(root / folder / "fad_other.log"), num_nodes=3).values()
    ) == (
        gt.FAD_OTHER_BOX,
        gt.FAD_OTHER_CLS,
    )


def _edges(genotype):
    return [(i, op, src) for i, node in enumerate(genotype.normal) for op, src in node]


@pytest.mark.parametrize("dil3", [False, True])
def test_random_genotypes_are_valid_and_cover_every_op_and_source(dil3):
    draws = [gt.random_genotype(seed=seed, dil3=dil3) for seed in range(400)]
    for g in draws:
        assert gt.as_genotype(str(g), num_nodes=3) == g  # a valid genotype, as it is written
        for node in g.normal:
            assert node[0][1] != node[1][1]  # two distinct sources
    edges = [e for g in draws for e in _edges(g)]
    assert {op for _, op, _ in edges} == set(gt.primitives(dil3=dil3)[:-1])  # never 'none'
    for i in range(3):
        assert {src for node, _, src in edges if node == i} == set(range(2 + i))


def test_random_genotypes_are_uniform_over_sources_and_ops():
    draws = [gt.random_genotype(seed=seed) for seed in range(2000)]
    node2 = [src for g in draws for _, src in g.normal[2]]  # 4 sources, 2 of them each time
    for src in range(4):
        assert node2.count(src) / len(draws) == pytest.approx(0.5, abs=0.05)
    ops = [op for g in draws for _, op, _ in _edges(g)]
    for op in gt.PRIMITIVES[:-1]:
        assert ops.count(op) / len(ops) == pytest.approx(0.1, abs=0.015)


def test_random_genotype_is_reproducible_for_a_seed():
    assert gt.random_genotype(seed=3) == gt.random_genotype(seed=3)
    assert len({gt.random_genotype(seed=s) for s in range(20)}) == 20
    rng = random.Random(3)
    box, cls = gt.random_genotype(seed=rng), gt.random_genotype(seed=rng)
    assert box == gt.random_genotype(seed=3) and cls != box
    assert gt.random_genotype(seed=5, num_nodes=4).num_nodes == 4
    with pytest.raises(ValueError, match="seed must be an int or a random.Random"):
        gt.random_genotype(seed="3")
    with pytest.raises(ValueError, match="num_nodes must be a positive int"):
        gt.random_genotype(seed=3, num_nodes=0)


def test_random_command_writes_a_loadable_genotype_file(tmp_path, capsys):
    path = tmp_path / "random" / "genotype.log"
    gt.main(["random", "--seed", "7", "-o", str(path)])
    box, cls = load_genotype_file(str(path), num_nodes=3).values()
    rng = random.Random(7)
    assert (box, cls) == (gt.random_genotype(seed=rng), gt.random_genotype(seed=rng))
    assert "written to" in capsys.readouterr().err
    gt.main(["random", "--seed", "7", "--dil3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "+dil_conv_3x3_r3" in "".join(lines)  # the 12-op space
    assert [Genotype.from_str(line) for line in lines] != [box, cls]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["random"], "the following arguments are required: --seed"),
        (["random", "--seed", "x"], "invalid int value: 'x'"),
        (["random", "--seed", "1", "--num-nodes", "0"], "--num-nodes: must be at least 1"),
        ([], "required: COMMAND"),
    ],
)
def test_random_command_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gt.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_random_command_runs_as_a_module(tmp_path, root):
    path = tmp_path / "genotype.log"
    subprocess.run(
        [sys.executable, "-m", "fad.genotypes", "random", "--seed", "3", "-o", str(path)],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=120,
    )
    rng = random.Random(3)
    assert tuple(load_genotype_file(str(path)).values()) == (
        gt.random_genotype(seed=rng),
        gt.random_genotype(seed=rng),
    )


def test_a_mask_towers_file_is_one_labelled_line(tmp_path):
    path = tmp_path / "genotype.log"
    save_genotype_file(str(path), {"mask": gt.FAD_OTHER_BOX})
    assert path.read_text() == f"{PUBLISHED[2]}  # mask tower\n"
    assert load_genotype_file(str(path)) == {"mask": gt.FAD_OTHER_BOX}
    path.write_text(f"{PUBLISHED[2]}\n")  # unlabelled: whose tower is it?
    with pytest.raises(ValueError, match="line labelled # box tower, # class tower, # mask"):
        load_genotype_file(str(path))
    path.write_text(f"{PUBLISHED[2]}  # class tower\n{PUBLISHED[3]}\n")  # no silent swap
    with pytest.raises(ValueError, match="found 2 lines, 1 labelled"):
        load_genotype_file(str(path))
    path.write_text(f"{PUBLISHED[2]}  # mask tower\n{PUBLISHED[3]}  # mask tower\n")
    with pytest.raises(ValueError, match="a tower has two lines"):
        load_genotype_file(str(path))
