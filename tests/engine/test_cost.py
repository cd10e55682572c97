"""Cost-aware search: the candidates' cost table and the cost term of the alpha step."""

import logging
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from fad.engine.cost import (  # noqa: E402
    CostTable,
    build_cost_table,
    cost_image_size,
    feature_sizes,
    op_costs,
)
from fad.genotypes import FAD_PAPER_BOX, PRIMITIVES, PRIMITIVES_DIL3  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEARCH_CFG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
LEVELS = feature_sizes((128, 128), [8, 16, 32, 64, 128])


@pytest.fixture
def one_thread():
    """One torch thread: these tests run many small ops, and on a busy machine a second thread
    mostly waits for its core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def flops():
    """The FLOPs of the candidates of the synthetic search (width 64, P3-P7 of 128x128)."""
    return dict(zip(PRIMITIVES, op_costs(ops=PRIMITIVES, channels=64, sizes=LEVELS).tolist()))


def test_flops_table_is_positive_with_none_free_and_ordered_along_each_chain(flops):
    flops = dict(flops)
    assert flops.pop("none") == 0
    assert all(v > 0 for v in flops.values())
    assert min(flops, key=flops.get) == "sinSep_conv_3x3"
    assert max(flops, key=flops.get) == "std_conv_3x3_x3"
    for base in ("std_conv_3x3", "sinSep_conv_3x3"):
        chain = [flops[op] for op in PRIMITIVES if op.startswith(base)]
        assert chain == sorted(chain), base  # base, +dil, _x2, _x2+dil, _x3
    # Three std layers cost three times one (fvcore counts the conv's and GroupNorm's work).
    assert flops["std_conv_3x3_x3"] == pytest.approx(3 * flops["std_conv_3x3"])
    # A 3x3 conv of C = 64 channels: 9 * 64 * 64 multiply-adds per pixel of P3-P7, and a bit.
    pixels = sum(h * w for h, w in LEVELS)
    assert flops["std_conv_3x3"] == pytest.approx(9 * 64 * 64 * pixels / 1e9, rel=0.01)


def test_normalised_costs_hardly_depend_on_the_input_size(flops):
    """So that one cost_weight means the same at any input size."""
    large = op_costs(
        ops=PRIMITIVES, channels=64, sizes=feature_sizes((416, 693), [8, 16, 32, 64, 128])
    )
    small = CostTable(ops=PRIMITIVES, costs=torch.tensor(list(flops.values())), cost="flops")
    large = CostTable(ops=PRIMITIVES, costs=large, cost="flops")
    assert large.costs[0] > 9 * small.costs[0]  # 17x the pixels
    torch.testing.assert_close(large.normalised, small.normalised, atol=0.01, rtol=0)
    assert small.normalised.max() == 1 and small.normalised[-1] == 0


def test_latency_table_is_measured_for_every_candidate_but_none(one_thread):
    costs = op_costs(ops=PRIMITIVES_DIL3, channels=32, sizes=[(8, 8), (4, 4)], cost="latency")
    assert costs.shape == (13,) and costs[-1] == 0
    assert (costs[:-1] > 0).all()


def test_computing_a_table_leaves_the_callers_random_state_alone():
    """The search's seeds (weights, loaders) must not depend on whether it computed a table."""
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    op_costs(ops=PRIMITIVES, channels=32, sizes=[(8, 8)])
    assert torch.equal(torch.rand(3), expected)


def test_cost_table_refuses_tables_without_a_free_none_or_a_free_real_op():
    with pytest.raises(ValueError, match="'none', at cost 0"):
        CostTable(ops=PRIMITIVES, costs=torch.ones(11), cost="flops")
    with pytest.raises(ValueError, match="more than 0"):
        CostTable(ops=PRIMITIVES, costs=torch.tensor([0.0] * 11), cost="flops")
    with pytest.raises(ValueError, match=r"shape \(11,\)"):
        CostTable(ops=PRIMITIVES, costs=torch.ones(13), cost="flops")


def test_genotype_cost_sums_the_ops_of_the_kept_edges(flops):
    table = CostTable(ops=PRIMITIVES, costs=torch.tensor(list(flops.values())), cost="flops")
    ops = [op for node in FAD_PAPER_BOX.normal for op, _ in node]
    assert table.genotype_cost(FAD_PAPER_BOX) == pytest.approx(sum(flops[op] for op in ops))
    assert table.genotype_cost(FAD_PAPER_BOX, num_cells=2) == pytest.approx(
        2 * table.genotype_cost(FAD_PAPER_BOX)
    )
    assert table.unit == "GFLOPs"


def test_the_input_size_needs_a_resize_with_a_long_side_limit():
    cfg = LazyConfig.load(str(ROOT / SEARCH_CFG))
    assert cost_image_size(cfg.dataloader.arch) == (128, 128)
    del cfg.dataloader.arch.mapper.augmentations[0].max_size  # ResizeShortestEdge: no limit
    with pytest.raises(ValueError, match="has no max_size"):
        cost_image_size(cfg.dataloader.arch)


def test_cost_table_of_the_synthetic_search_model():
    cfg = LazyConfig.load(str(ROOT / SEARCH_CFG))
    model = instantiate(cfg.model)
    table = build_cost_table(model=model, image_size=(128, 128))
    assert table.ops == PRIMITIVES
    towers = model.search_towers()
    # Near-uniform alphas: each of the 2 x 9 edges costs about the mean normalised candidate.
    expected = table.expected_cost(towers)
    assert expected.item() == pytest.approx(18 * table.normalised.mean().item(), rel=0.01)
    expected.backward()
    assert all(a.grad is not None and (a.grad != 0).all() for a in model.arch_parameters())


def test_cost_table_logs_expected_and_derived_costs_per_tower(flops):
    table = CostTable(ops=PRIMITIVES, costs=torch.tensor(list(flops.values())), cost="flops")
    cfg = LazyConfig.load(str(ROOT / SEARCH_CFG))
    model = instantiate(cfg.model)
    towers = model.search_towers()
    genotypes = model.genotypes()
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("fad.engine.cost")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with EventStorage() as storage:
            table.log(towers=towers, genotypes=genotypes, storage=storage, iteration=7)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    latest = {k: v for k, (v, _) in storage.latest().items()}
    assert set(latest) == {
        "cost/expected",
        "cost/derived_gflops",
        "cost/box/expected",
        "cost/cls/expected",
        "cost/box/derived_gflops",
        "cost/cls/derived_gflops",
    }
    assert latest["cost/expected"] == pytest.approx(
        latest["cost/box/expected"] + latest["cost/cls/expected"]
    )
    assert latest["cost/box/derived_gflops"] == pytest.approx(table.genotype_cost(genotypes["box"]))
    assert [r.getMessage().split(" (")[0] for r in records] == [
        f"Cost at iteration 7: expected {latest['cost/expected']:.3f}"
    ]
