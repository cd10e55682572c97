"""Candidate ops and the mixed ops (docs/METHOD.md sections 2-4)."""

import pytest
import torch
import torch.nn.functional as F

from fad.genotypes import PRIMITIVES, PRIMITIVES_DIL3, op_layers, primitives
from fad.nas.mixed_op import MixedOp, RepShareMixedOp
from fad.nas.ops import DilatedDepthwiseConv, build_op

C = 32  # the smallest width GroupNorm(32) allows


def test_primitives_are_the_published_names_in_alpha_order():
    assert PRIMITIVES == (
        "std_conv_3x3",
        "std_conv_3x3+dil_conv_3x3",
        "std_conv_3x3_x2",
        "std_conv_3x3_x2+dil_conv_3x3",
        "std_conv_3x3_x3",
        "sinSep_conv_3x3",
        "sinSep_conv_3x3+dil_conv_3x3",
        "sinSep_conv_3x3_x2",
        "sinSep_conv_3x3_x2+dil_conv_3x3",
        "sinSep_conv_3x3_x3",
        "none",
    )
    assert len(PRIMITIVES_DIL3) == 13 and PRIMITIVES_DIL3[-1] == "none"
    assert set(PRIMITIVES) <= set(PRIMITIVES_DIL3)
    assert op_layers("sinSep_conv_3x3_x2+dil_conv_3x3") == ["sinSep", "sinSep", "dil"]


@pytest.mark.parametrize("name", [p for p in PRIMITIVES_DIL3 if p != "none"])
def test_every_op_alone_shape_gradients_and_parameters(name, op_params):
    op = build_op(name, channels=C)
    x = torch.randn(2, C, 9, 11)
    y = op(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())
    assert sum(p.numel() for p in op.parameters()) == op_params(name, C)


def test_none_op_is_zero_and_unknown_op_is_refused():
    x = torch.randn(1, C, 4, 4)
    assert torch.equal(build_op("none", channels=C)(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="unknown FAD op 'sep_conv_3x3'"):
        build_op("sep_conv_3x3", channels=C)


@pytest.mark.parametrize("op_cls", [RepShareMixedOp, MixedOp])
@pytest.mark.parametrize("dil3", [False, True])
def test_mixed_op_shape_and_gradients_reach_every_weight_and_alpha(op_cls, dil3):
    torch.manual_seed(0)
    op = op_cls(channels=C, dil3=dil3)
    alpha = torch.randn(len(primitives(dil3=dil3)), requires_grad=True)
    x = torch.randn(2, C, 8, 8)
    y = op(x, alpha.softmax(0))
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())
    # Every alpha, 'none' included, moves the softmax and so gets a gradient.
    assert (alpha.grad.abs() > 0).all()


@pytest.mark.parametrize("op_cls", [RepShareMixedOp, MixedOp])
def test_mixed_op_all_weight_on_none_returns_zeros(op_cls):
    op = op_cls(channels=C)
    weights = torch.zeros(len(PRIMITIVES))
    weights[-1] = 1.0
    y = op(torch.randn(2, C, 6, 6), weights)
    assert torch.equal(y, torch.zeros_like(y))


def test_sharing_op_reads_each_candidate_off_the_shared_chain():
    """A one-hot weight selects exactly the candidate docs/METHOD.md section 3 says it computes."""
    torch.manual_seed(0)
    op = RepShareMixedOp(channels=C).eval()
    x = torch.randn(1, C, 7, 7)
    chain = op.chains[1]  # sinSep
    l1 = chain.layers[0](x)
    l2 = chain.layers[1](l1)
    expected = {
        "sinSep_conv_3x3": chain.decouple[0](l1),
        "sinSep_conv_3x3+dil_conv_3x3": chain.dil[0](l1),
        "sinSep_conv_3x3_x2": chain.decouple[1](l2),
        "sinSep_conv_3x3_x2+dil_conv_3x3": chain.dil[1](l2),
        "sinSep_conv_3x3_x3": chain.layers[2](l2),
    }
    for name, want in expected.items():
        weights = torch.zeros(len(PRIMITIVES))
        weights[PRIMITIVES.index(name)] = 1.0
        torch.testing.assert_close(op(x, weights), want)


def test_sharing_runs_three_base_layers_per_type_instead_of_nine():
    shared = RepShareMixedOp(channels=C)
    plain = MixedOp(channels=C)

    def count(module, kind):
        return sum(getattr(m, "kind", None) == kind for m in module.modules())

    assert count(shared, "std") == 3 and count(plain, "std") == 9
    assert count(shared, "sinSep") == 3 and count(plain, "sinSep") == 9
    assert count(shared, "dil") == 4 and count(plain, "dil") == 4


@pytest.mark.parametrize("dilation", [2, 3])
@pytest.mark.parametrize("size", [(8, 12), (7, 11), (1, 1), (2, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_polyphase_dilated_depthwise_conv_equals_the_direct_conv(dilation, size, channels_last):
    torch.manual_seed(0)
    conv = DilatedDepthwiseConv(C, dilation)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, C, *size).contiguous(memory_format=layout).requires_grad_()
    y = conv(x)
    assert y.is_contiguous(memory_format=layout)
    direct = F.conv2d(x, conv.weight, conv.bias, padding=dilation, dilation=dilation, groups=C)
    torch.testing.assert_close(y, direct)
    g = torch.randn_like(y)
    params = (x, conv.weight, conv.bias)
    grads = torch.autograd.grad(y, params, g)
    want = torch.autograd.grad(direct, params, g)
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dilation", [2, 3])
def test_the_direct_argument_takes_the_direct_kernel_on_the_cpu(dilation):
    """What GPUs (and traces) run, on CPU tensors: one convolution and no sub-grid copies."""
    conv = DilatedDepthwiseConv(C, dilation, direct=True)
    x = torch.randn(1, C, 4 * dilation, 5 * dilation)

    def ops():
        with torch.autograd.profiler.profile() as prof:
            y = conv(x)
        return y, [e.name for e in prof.function_events]

    y, direct_ops = ops()
    assert "aten::permute" not in direct_ops and direct_ops.count("aten::convolution") == 1
    conv.direct = None  # the CPU's own form: polyphase, by sub-grids
    assert "aten::permute" in ops()[1]
    direct = F.conv2d(x, conv.weight, conv.bias, padding=dilation, dilation=dilation, groups=C)
    torch.testing.assert_close(y, direct)


@pytest.mark.parametrize("dilation", [2, 3])
def test_a_traced_dilated_depthwise_conv_is_right_at_sizes_of_other_divisibility(dilation):
    """The polyphase path branches on the input size: a trace must not bake that branch in."""
    torch.manual_seed(0)
    conv = DilatedDepthwiseConv(C, dilation)
    traced = torch.jit.trace(conv, torch.randn(1, C, 6 * dilation, 4 * dilation))
    for size in [(7, 11), (2 * dilation, 5), (13, 3 * dilation)]:
        x = torch.randn(2, C, *size)
        direct = F.conv2d(x, conv.weight, conv.bias, padding=dilation, dilation=dilation, groups=C)
        torch.testing.assert_close(traced(x), direct)
