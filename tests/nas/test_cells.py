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
    prepared = cell.prepare(weights)
    assert _inputs_reaching_each_node(lambda a, b: cell(a, b, prepared), 3, 64) == expected


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


@pytest.mark.parametrize("num_cells", [1, 2])
def test_expected_cost_is_the_softmax_weighted_cost_summed_over_edges_and_cells(num_cells):
    torch.manual_seed(0)
    tower = SearchTower(in_channels=32, op_channels=32, num_cells=num_cells)
    costs = torch.linspace(1.0, 2.0, len(PRIMITIVES) - 1).tolist() + [0.0]
    costs = torch.tensor(costs)
    cost = tower.expected_cost(costs)
    weights = [a.detach().softmax(-1) for a in tower.alphas]
    want = num_cells * sum(float(w[e] @ costs) for w in weights for e in range(len(w)))
    assert cost.item() == pytest.approx(want, rel=1e-6)
    # With near-uniform alphas every one of the 9 edges costs about the mean candidate.
    assert cost.item() == pytest.approx(num_cells * 9 * costs.mean().item(), rel=1e-2)


def test_the_gradient_of_the_expected_cost_reaches_every_alpha():
    torch.manual_seed(0)
    tower = SearchTower(in_channels=32, op_channels=32)
    costs = torch.tensor([3.0, 4, 6, 7, 9, 1, 2, 2, 3, 3, 0])
    tower.expected_cost(costs).backward()
    for alpha in tower.alphas:
        p = alpha.detach().softmax(-1)
        # d/d alpha_k of sum_j p_j c_j is p_k (c_k - sum_j p_j c_j), for every edge.
        torch.testing.assert_close(alpha.grad, p * (costs[None] - (p @ costs)[:, None]))
        assert (alpha.grad.abs() > 0).all()
    # Cheaper candidates than the edge's mean get a negative gradient: descent raises them.
    assert (tower.alphas[0].grad[:, costs < costs.mean()] < 0).all()


def test_expected_cost_refuses_a_cost_vector_of_the_wrong_length():
    tower = SearchTower(in_channels=32, op_channels=32, dil3=True)
    with pytest.raises(ValueError, match=r"op_costs must have shape \(13,\)"):
        tower.expected_cost(torch.ones(11))


def test_cost_pressure_makes_the_cheapest_candidate_the_derived_op_of_every_edge():
    """With a large cost weight the softmax weight drains towards ``none`` (cost 0), which the
    derivation never keeps; among the real candidates the cheapest keeps the most weight."""
    torch.manual_seed(0)
    tower = SearchTower(in_channels=32, op_channels=32)
    costs = torch.tensor([0.9, 0.8, 0.7, 0.6, 1.0, 0.5, 0.3, 0.2, 0.4, 0.25, 0.0])
    cheapest = PRIMITIVES[int(costs[:-1].argmin())]
    assert cheapest == "sinSep_conv_3x3_x2"
    # A task loss that prefers other candidates, which the cost term must outweigh: a fixed
    # random preference per edge and candidate (a forward of the tower would only be slower).
    preferences = [torch.randn(a.shape) for a in tower.alphas]
    optimizer = torch.optim.Adam(tower.alphas, lr=0.1, betas=(0.5, 0.999), weight_decay=1e-3)
    for _ in range(20):
        optimizer.zero_grad()
        task = sum((a.softmax(-1) * p).sum() for a, p in zip(tower.alphas, preferences))
        (task + 100.0 * tower.expected_cost(costs)).backward()
        optimizer.step()
    assert all(op == cheapest for node in tower.genotype().normal for op, _ in node)
    # Most of the weight went to none, which costs nothing.
    assert all((a.argmax(-1) == len(PRIMITIVES) - 1).all() for a in tower.alphas)
