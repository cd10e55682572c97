"""The search cell's one forward (edges by groups) against the edge-by-edge reference, the
checkpoint layout, and the op counter of the benchmarks."""

import gzip
import json
import sys
from pathlib import Path

import pytest
import torch
from edgewise import tower_forward

from fad.nas.search_cells import SearchTower, edge_groups

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from op_count import OpCounter, gpu_forms, launches_kernel  # noqa: E402

LEVELS = [(6, 7), (3, 3)]
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    """These tests run thousands of tiny float64 convs, each an OpenMP parallel region: on a
    busy machine a stalled thread holds up every region (seconds per conv); one thread does not
    stall."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tower(**kwargs):
    """A float64 search tower with random alphas."""
    torch.manual_seed(0)
    tower = SearchTower(in_channels=64, op_channels=32, **kwargs).double()
    for a in tower.alphas:
        a.data.normal_()
    return tower


def _run(tower, forward, s0s, s1s):
    tower.zero_grad(set_to_none=True)
    outs = forward(tower, s0s, s1s)
    sum((o.sin() * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs, {n: p.grad for n, p in tower.named_parameters()}


def test_edge_groups_cover_every_edge_once_in_node_major_order():
    groups = edge_groups(3)
    assert [(g.sources, g.nodes) for g in groups] == [
        ((0, 1), (0, 1, 2)),
        ((2,), (1, 2)),
        ((3,), (2,)),
    ]
    edges = [e for g in groups for e in g.edges]
    assert sorted(edges) == [(i, j) for i in range(3) for j in range(2 + i)]
    assert groups[0].edges[:2] == [(0, 0), (0, 1)]  # the edges into node 0 are neighbours


@pytest.mark.parametrize(
    "tower, kwargs",
    [
        ("box", {}),
        ("cls", {}),
        ("cls", {"dil3": True, "num_cells": 2}),
        ("box", {"share": False}),
        ("cls", {"share": False, "num_nodes": 2}),
    ],
)
def test_the_forward_equals_the_edge_by_edge_cell_to_float64_rounding(tower, kwargs):
    model = _tower(**kwargs)
    g = torch.Generator().manual_seed(1)
    s0s = [torch.randn(2, 64, h, w, generator=g, dtype=torch.float64) for h, w in LEVELS]
    # The box tower reads one input (s0 = s1); the class tower two different ones.
    s1s = (
        None if tower == "box" else [torch.randn(s.shape, generator=g, dtype=s.dtype) for s in s0s]
    )
    ref_out, ref_grads = _run(model, tower_forward, s0s, s1s)
    out, grads = _run(model, lambda t, a, b: t(a, b), s0s, s1s)
    for a, b in zip(out, ref_out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # Every weight and every alpha. Biases in front of a GroupNorm of one channel per group
    # have a true gradient of 0: there both sides are rounding noise, on the scale of the rest.
    scale = max(g.abs().max() for g in ref_grads.values())
    assert set(grads) == set(ref_grads) and any("alphas" in n for n in grads)
    for name, ref in ref_grads.items():
        torch.testing.assert_close(grads[name], ref, rtol=1e-10, atol=1e-13 * scale, msg=name)


def test_checkpoints_of_commit_60478c4_load_strictly():
    """The state-dict names and shapes of search towers as commit 60478c4 wrote them (the
    sharing tower with 2 cells and dil3 has pre-processing and dil3 layers)."""
    with gzip.open(DATA / "search_tower_state_dict_60478c4.json.gz", "rt") as f:
        layouts = json.load(f)
    configs = {
        "share_dil3_2cells": dict(share=True, dil3=True, num_cells=2, num_nodes=2),
        "plain_1cell": dict(share=False, num_cells=1, num_nodes=2),
    }
    assert set(layouts) == set(configs)
    for name, kwargs in configs.items():
        tower = SearchTower(in_channels=64, op_channels=32, **kwargs)
        old = {k: torch.randn(shape) for k, shape in layouts[name].items()}
        tower.load_state_dict(old)  # strict: the same names and shapes
        torch.testing.assert_close(tower.state_dict(), old)


def _kernels(tower, forward, levels):
    tower.zero_grad(set_to_none=True)
    with OpCounter() as counter:
        outs = forward(tower, levels, None)
        sum(o.sum() for o in outs).backward()
    return counter.kernels()


def test_grouped_edges_cut_the_kernels_of_a_tower_to_under_a_third():
    tower = gpu_forms(_tower())
    levels = [torch.randn(1, 64, h, w, dtype=torch.float64) for h, w in LEVELS]
    grouped = _kernels(tower, lambda t, a, b: t(a, b), levels)
    assert grouped < _kernels(tower, tower_forward, levels) / 3


def test_gpu_forms_count_the_direct_dilated_conv():
    tower = _tower()
    x = [torch.randn(1, 64, 6, 6, dtype=torch.float64)]

    def convs():
        with OpCounter() as counter:
            tower(x)
        return counter.by_op()

    cpu = convs()
    gpu_forms(tower)
    gpu = convs()
    # The polyphase form's sub-grid copies are gone; every conv is still one convolution.
    assert gpu["aten.convolution.default"] == cpu["aten.convolution.default"]
    assert sum(gpu.values()) < sum(cpu.values())


def test_op_counter_tells_kernels_from_views_and_counts_backward_and_phases():
    x = torch.randn(4, 3, requires_grad=True)
    with OpCounter() as counter:
        with counter.phase("forward"):
            y = (x * 2).t().unsqueeze(0).sum()
        y.backward()
    forward = counter.by_op("forward")
    assert forward["aten.mul.Tensor"] == 1 and forward["aten.t.default"] == 1
    assert counter.kernels("forward") == 2  # mul, sum: the transpose and unsqueeze are views
    assert counter.total(None) > 0  # the backward, outside the phase
    assert not launches_kernel(torch.ops.aten.view.default)
    assert not launches_kernel(torch.ops.aten._unsafe_view.default)
    assert launches_kernel(torch.ops.aten.convolution.default)
