"""Perturbation-based selection (DARTS-PT): what it picks, what it costs, what it leaves behind."""

import pytest
import torch

from fad.genotypes import NONE, PRIMITIVES
from fad.nas.search_cells import SearchTower
from fad.nas.selection import perturbation_genotype

NONE_INDEX = PRIMITIVES.index(NONE)


def _tower(num_nodes=3):
    torch.manual_seed(0)
    return SearchTower(in_channels=32, op_channels=32, num_nodes=num_nodes)


def _linear_loss(tower, importance):
    """A validation loss that falls by ``importance[i][j, k]`` per unit of softmax weight on
    candidate k of edge (i, j): removing a candidate raises it by weight * importance."""

    def loss():
        return -sum((a.softmax(-1) * imp).sum() for a, imp in zip(tower.alphas, importance))

    return loss


def _planted(tower):
    """Alphas that favour op 0 on every edge, importances under which op 3 matters most on every
    edge, and the edges from sources 0 and 1 at nodes 0 and 1, from 2 and 3 at node 2."""
    importance = []
    with torch.no_grad():
        for i, a in enumerate(tower.alphas):
            a.zero_()
            a[:, 0] = 1.0  # alpha magnitude picks op 0
            imp = torch.full(a.shape, 0.1)
            imp[:, NONE_INDEX] = 0.0
            imp[:, 3] = 2.0  # op 3's weight is smaller, its removal costs more
            strong = (2, 3) if i == 2 else (0, 1)
            imp[list(strong)] *= 3.0
            importance.append(imp)
    return importance


@pytest.mark.parametrize("tune", [None, lambda: None])  # as given; progressive
def test_perturbation_picks_the_candidates_and_edges_whose_removal_hurts(tune):
    tower = _tower()
    importance = _planted(tower)
    before = [a.detach().clone() for a in tower.alphas]
    selection = perturbation_genotype(tower, val_loss_fn=_linear_loss(tower, importance), tune=tune)
    op3 = PRIMITIVES[3]
    got = [sorted(node, key=lambda e: e[1]) for node in selection.genotype.normal]
    assert got == [[(op3, 0), (op3, 1)], [(op3, 0), (op3, 1)], [(op3, 2), (op3, 3)]]
    # The alpha magnitude reads op 0 off the same alphas: the two selections differ here.
    assert all(op == PRIMITIVES[0] for node in tower.genotype().normal for op, _ in node)
    for a, b in zip(tower.alphas, before):
        assert torch.equal(a, b)
    # 9 edges x 10 candidates, 9 edge removals, 1 base loss.
    assert selection.val_passes == 100
    assert selection.seconds >= 0
    assert selection.base_loss == pytest.approx(_linear_loss(tower, importance)().item())
    assert all(torch.isnan(s[:, NONE_INDEX]).all() for s in selection.op_scores)
    assert [tuple(s.shape) for s in selection.edge_scores] == [(2,), (3,), (4,)]


def test_removing_a_candidate_keeps_the_other_weights():
    tower = _tower(num_nodes=1)
    with torch.no_grad():
        tower.alphas[0].normal_()
    w0 = tower.alphas[0].softmax(-1).detach().clone()
    seen = []

    def loss():
        seen.append(tower.alphas[0].softmax(-1).detach().clone())
        return torch.zeros(())

    perturbation_genotype(tower, val_loss_fn=loss)
    # Pass 1 is the base; pass 2 removes candidate 0 of edge 0: its weight goes to 'none'.
    torch.testing.assert_close(seen[0], w0)
    expected = w0.clone()
    expected[0, NONE_INDEX] += expected[0, 0]
    expected[0, 0] = 0.0
    torch.testing.assert_close(seen[1], expected)


def test_tune_runs_between_decisions_and_alphas_survive_an_error():
    tower = _tower()
    importance = _planted(tower)
    before = [a.detach().clone() for a in tower.alphas]
    calls = []
    perturbation_genotype(
        tower,
        val_loss_fn=_linear_loss(tower, importance),
        tune=lambda: calls.append(torch.is_grad_enabled()),
    )
    assert calls == [True] * (9 + 3)  # after each edge's op, then each node's edges

    passes = []

    def failing():
        passes.append(1)
        if len(passes) == 20:
            raise RuntimeError("validation failed")
        return _linear_loss(tower, importance)()

    with pytest.raises(RuntimeError, match="validation failed"):
        perturbation_genotype(tower, val_loss_fn=failing, tune=lambda: None)
    for a, b in zip(tower.alphas, before):
        assert torch.equal(a, b)
