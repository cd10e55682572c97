"""Search and derived cells and towers (docs/METHOD.md sections 5-7)."""

import pytest
import torch

from fad import genotypes as gt
from fad.genotypes import PRIMITIVES
from fad.nas.derived_cells import DerivedTower
from fad.nas.search_cells import SearchTower, arch_parameters, weight_parameters


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "genotype", [gt.FAD_PAPER_BOX, gt.FAD_PAPER_CLS, gt.FAD_OTHER_BOX, gt.FAD_OTHER_CLS]
)
@pytest.mark.parametrize("c", [96, 128])
def test_derived_tower_has_the_original_parameter_count(genotype, c, original_tower_params):
    tower = DerivedTower(genotype=genotype, in_channels=256, op_channels=c, num_cells=2)
    assert _n_params(tower) == original_tower_params(genotype, c_node=256, c=c, num_cells=2)


def test_paper_box_tower_figure():
    # A number to recognise in logs and the README: R-50 1x box tower, C = 96, two cells.
    assert _n_params(DerivedTower(genotype=gt.FAD_PAPER_BOX)) == 1_935_552


def test_derived_tower_layers_and_widths():
    tower = DerivedTower(genotype=gt.FAD_PAPER_BOX, in_channels=64, op_channels=32)
    edge = tower.cells[0].dag[0][0]  # ('sinSep_conv_3x3_x3', 0): 1x1, 3 sinSep layers, 1x1
    shapes = [tuple(m.weight.shape) for m in edge.modules() if isinstance(m, torch.nn.Conv2d)]
    assert shapes == [(32, 64, 1, 1)] + [(32, 1, 3, 3), (32, 32, 1, 1)] * 3 + [(64, 32, 1, 1)]
    assert isinstance(tower.cells[0].preprocess[1], torch.nn.Identity)
    assert not isinstance(tower.cells[1].preprocess[1], torch.nn.Identity)  # 192 -> 64


def test_derived_tower_forward_box_and_class_wiring():
    torch.manual_seed(0)
    box = DerivedTower(genotype=gt.FAD_PAPER_BOX, in_channels=64, op_channels=32)
    cls = DerivedTower(genotype=gt.FAD_PAPER_CLS, in_channels=64, op_channels=32)
    feature = torch.randn(2, 64, 10, 12)
    bbox_out = box(feature)
    assert bbox_out.shape == (2, 192, 10, 12)
    torch.testing.assert_close(bbox_out, box(feature, feature))
    bbox_feature = bbox_out[:, :64]
    out = cls(bbox_feature, feature)
    assert out.shape == (2, 192, 10, 12)
    out.mean().backward()
    assert all(p.grad is not None for p in cls.parameters())


def _inputs_reaching_each_node(cell_fn, num_nodes: int, c_node: int):
    """For each node of a cell, which of its inputs (0: s0, 1: s1) its state depends on."""
    s0, s1 = (torch.randn(1, c_node, 5, 6, requires_grad=True) for _ in range(2))
    out = cell_fn(s0, s1)
    reached = []
    for j in range(num_nodes):
        grads = torch.autograd.grad(
            out[:, j * c_node : (j + 1) * c_node].sum(),
            [s0, s1],
            retain_graph=True,
            allow_unused=True,
        )
        reached.append({i for i, g in enumerate(grads) if g is not None and g.abs().sum() > 0})
    return reached


@pytest.mark.parametrize(
    "sources, expected",
    [
        # Source k: 0 = s0, 1 = s1, k >= 2 = node k - 2 (section 5).
        ([(0, 0), (1, 1), (2, 2)], [{0}, {1}, {0}]),
        ([(1, 1), (0, 0), (3, 3)], [{1}, {0}, {0}]),
        ([(0, 1), (2, 2), (3, 0)], [{0, 1}, {0, 1}, {0, 1}]),
    ],
)
def test_derived_cell_edges_read_the_states_their_genotype_names(sources, expected):
    normal = [[("sinSep_conv_3x3", a), ("std_conv_3x3", b)] for a, b in sources]
    genotype = gt.Genotype(normal=normal, normal_concat=range(2, 5))
    cell = DerivedTower(genotype=genotype, in_channels=64, op_channels=32, num_cells=1).cells[0]
    assert _inputs_reaching_each_node(cell, 3, 64) == expected


@pytest.mark.parametrize(
    "edges, expected",
    [
        ([(0, 0)], [{0}, set(), set()]),
        ([(0, 1)], [{1}, set(), set()]),
        ([(0, 1), (1, 2)], [{1}, {1}, set()]),
        ([(1, 0), (2, 3)], [set(), {0}, {0}]),
        ([(0, 0), (1, 1), (2, 2)], [{0}, {1}, {0}]),
    ],
)
def test_search_cell_edges_read_their_source_states(edges, expected):
    """Only the (node, source) edges listed are off ``none``: each node reads exactly the
    inputs its source states depend on."""
    cell = SearchTower(in_channels=64, op_channels=32).cells[0]
    weights = [torch.zeros(2 + j, len(PRIMITIVES)) for j in range(3)]
    for w in weights:
        w[:, -1] = 1.0  # none
    for node, src in edges:
        weights[node][src] = torch.eye(len(PRIMITIVES))[0]  # std_conv_3x3
    assert _inputs_reaching_each_node(lambda a, b: cell(a, b, weights), 3, 64) == expected


def test_derived_tower_accepts_text_and_plain_genotypes_and_checks_nodes():
    a = DerivedTower(genotype=str(gt.FAD_PAPER_CLS), in_channels=64, op_channels=32)
    b = DerivedTower(genotype=gt.FAD_PAPER_CLS.to_plain(), in_channels=64, op_channels=32)
    assert a.genotype == b.genotype == gt.FAD_PAPER_CLS
    with pytest.raises(ValueError, match="expected 4 nodes"):
        DerivedTower(genotype=gt.FAD_PAPER_CLS, num_nodes=4)
    with pytest.raises(ValueError, match="unknown op"):
        DerivedTower(genotype="Genotype(normal=[[('x', 0), ('x', 1)]], normal_concat=range(2, 3))")


@pytest.mark.parametrize("num_cells", [1, 2])
@pytest.mark.parametrize("share", [True, False])
def test_search_tower_alphas_forward_and_gradients(num_cells, share):
    torch.manual_seed(0)
    tower = SearchTower(in_channels=64, op_channels=32, num_cells=num_cells, share=share)
    assert [tuple(a.shape) for a in arch_parameters(tower)] == [(2, 11), (3, 11), (4, 11)]
    assert all(a.abs().max() < 0.01 for a in tower.alphas)  # 1e-3 * N(0, 1)
    s0, s1 = torch.randn(2, 64, 6, 7), torch.randn(2, 64, 6, 7)
    out = tower(s0, s1)
    assert out.shape == (2, 192, 6, 7)
    out.square().mean().backward()
    assert all(a.grad is not None and (a.grad.abs() > 0).all() for a in tower.alphas)
    genotype = tower.genotype()
    assert genotype.num_nodes == 3 and gt.Genotype.from_str(str(genotype)) == genotype


def test_search_tower_dil3_space():
    tower = SearchTower(in_channels=32, op_channels=32, dil3=True, num_nodes=2)
    assert [tuple(a.shape) for a in tower.alphas] == [(2, 13), (3, 13)]
    assert tower(torch.randn(1, 32, 5, 5)).shape == (1, 64, 5, 5)


def test_search_cell_edges_are_bias_free_bottlenecks():
    tower = SearchTower(in_channels=64, op_channels=32)
    pre, _, post = tower.cells[0].dag[2][3]
    assert pre.weight.shape == (32, 64, 1, 1) and pre.bias is None
    assert post.weight.shape == (64, 32, 1, 1) and post.bias is None
    assert [len(node) for node in tower.cells[0].dag] == [2, 3, 4]


def test_alphas_and_weights_are_told_apart_by_name():
    """Any module holding search towers splits into alphas and weights by parameter name."""
    model = torch.nn.ModuleDict(
        {"box": SearchTower(in_channels=32, op_channels=32), "pred": torch.nn.Conv2d(96, 1, 1)}
    )
    alphas, weights = arch_parameters(model), weight_parameters(model)
    assert [n for n, p in model.named_parameters() if any(p is a for a in alphas)] == [
        "box.alphas.0",
        "box.alphas.1",
        "box.alphas.2",
    ]
    assert len(alphas) + len(weights) == len(list(model.parameters()))
    assert not {id(p) for p in alphas} & {id(p) for p in weights}
    model["pred"].weight.requires_grad_(False)  # frozen weights are not trained
    assert len(weight_parameters(model)) == len(weights) - 1
