"""The grouped-edge forward of search cells (fad.nas.grouped_cell) and the op counter."""

from contextlib import nullcontext

import pytest
import torch

from fad.nas.grouped_cell import edge_groups
from fad.nas.ops import cuda_code_path
from fad.nas.search_cells import SearchTower
from fad.op_count import OpCounter, launches_kernel

LEVELS = [(6, 7), (3, 3)]


@pytest.fixture(autouse=True)
def one_thread():
    """These tests run thousands of tiny float64 convs, each an OpenMP parallel region: on a
    busy machine a stalled thread holds up every region (seconds per conv); one thread does not
    stall."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _towers(**kwargs):
    """An edge-by-edge search tower (float64, random alphas) and a grouped copy of it, loaded
    from the first one's state dict."""
    torch.manual_seed(0)
    edges = SearchTower(in_channels=64, op_channels=32, grouped_edges=False, **kwargs).double()
    for a in edges.alphas:
        a.data.normal_()
    grouped = SearchTower(in_channels=64, op_channels=32, grouped_edges=True, **kwargs).double()
    grouped.load_state_dict(edges.state_dict())  # the same layout: strict loading
    return edges, grouped


def _run(tower, s0s, s1s):
    tower.zero_grad(set_to_none=True)
    outs = tower(s0s, s1s)
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
    "tower, dil3, num_cells", [("box", False, 1), ("cls", False, 1), ("cls", True, 2)]
)
def test_grouped_edges_equal_the_edge_by_edge_cell_to_float64_rounding(dil3, num_cells, tower):
    edges, grouped = _towers(dil3=dil3, num_cells=num_cells)
    g = torch.Generator().manual_seed(1)
    s0s = [torch.randn(2, 64, h, w, generator=g, dtype=torch.float64) for h, w in LEVELS]
    # The box tower reads one input (s0 = s1); the class tower two different ones.
    s1s = (
        None if tower == "box" else [torch.randn(s.shape, generator=g, dtype=s.dtype) for s in s0s]
    )
    ref_out, ref_grads = _run(edges, s0s, s1s)
    out, grads = _run(grouped, s0s, s1s)
    for a, b in zip(out, ref_out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # Every weight and every alpha. Biases in front of a GroupNorm of one channel per group
    # have a true gradient of 0: there both sides are rounding noise, on the scale of the rest.
    scale = max(g.abs().max() for g in ref_grads.values())
    assert set(grads) == set(ref_grads) and any("alphas" in n for n in grads)
    for name, ref in ref_grads.items():
        torch.testing.assert_close(grads[name], ref, rtol=1e-10, atol=1e-13 * scale, msg=name)


def _kernels(tower, levels):
    tower.zero_grad(set_to_none=True)
    with cuda_code_path(), OpCounter() as counter:
        outs = tower(levels)
        sum(o.sum() for o in outs).backward()
    return counter.kernels()


def test_grouped_edges_cut_the_kernels_of_a_tower_to_under_a_third():
    edges, grouped = _towers()
    levels = [torch.randn(1, 64, h, w, dtype=torch.float64) for h, w in LEVELS]
    assert _kernels(grouped, levels) < _kernels(edges, levels) / 3


def test_grouped_edges_default_to_the_gpu_code_path():
    torch.manual_seed(0)
    tower = SearchTower(in_channels=64, op_channels=32)
    assert tower.grouped_edges is None
    x = [torch.randn(1, 64, 6, 6)]

    def convs(path):
        with path, OpCounter() as counter:
            tower(x)
        return counter.by_op()["aten.convolution.default"]

    cpu, gpu = convs(nullcontext()), convs(cuda_code_path())
    assert gpu < cpu / 3  # grouped on the GPU's path, edge by edge on the CPU's
    # The plain DARTS mixed ops (share=False) run edge by edge everywhere.
    plain = SearchTower(in_channels=64, op_channels=32, share=False, grouped_edges=True)
    assert plain.grouped_edges is False


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
