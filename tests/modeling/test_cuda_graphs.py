"""CUDA graphs of the head (fad.modeling.cuda_graphs): eager, and saying why, on a CPU."""

import copy
import logging
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the model tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402

from fad.modeling.cuda_graphs import CPU_REASON, HeadGraphs, enable_cuda_graphs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEARCH_R18 = "configs/fad/search/fad_fcos_R_18_synthetic.py"
RETINA_SEARCH_R18 = "configs/fad/search/fad_retinanet_R_18_synthetic.py"
LOGGER = "fad.modeling.cuda_graphs"


def _model(device: str = "cpu", rel_path: str = SEARCH_R18):
    torch.manual_seed(0)
    return instantiate(LazyConfig.load(str(ROOT / rel_path)).model).to(device)


def _features(model, device: str = "cpu", *, requires_grad: bool = False):
    channels = model.head.box_reduce.out_channels
    return [
        torch.randn(2, channels, 2**k, 2**k + 1, device=device, requires_grad=requires_grad)
        for k in range(5, 0, -1)
    ]


def test_on_a_cpu_graphs_are_not_installed_and_the_reason_is_logged(caplog):
    model = _model()
    forward = model.head.forward
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert enable_cuda_graphs(model) is False
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [CPU_REASON]
    assert model.head.forward == forward  # the head is left as it was


@pytest.mark.parametrize("rel_path", [SEARCH_R18, RETINA_SEARCH_R18])
def test_head_graphs_run_cpu_features_eagerly_and_say_why_once(caplog, rel_path):
    model = _model(rel_path=rel_path)
    graphs = HeadGraphs(model.head)
    features = _features(model)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        outs = [graphs(features) for _ in range(3)]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [CPU_REASON]
    assert not graphs.graphs  # nothing captured
    eager = model.head(features)
    for out in outs:
        for a, b in zip(sum(out, []), sum(eager, [])):
            assert torch.equal(a, b)


def test_a_signature_tells_the_alpha_step_the_weight_step_and_inference_apart():
    model = _model()
    graphs = HeadGraphs(model.head)
    features = _features(model)
    weights = model.weight_parameters()
    alpha_step = graphs.signature(features)
    for w in weights:
        w.requires_grad_(False)
    assert graphs.signature(features) != alpha_step  # weights frozen: the first-order alpha step
    for w in weights:
        w.requires_grad_(True)
    with torch.no_grad():
        assert graphs.signature(features) != alpha_step
    assert graphs.signature(_features(model, requires_grad=True)) != alpha_step  # weight step
    assert graphs.signature([f[:1] for f in features]) != alpha_step  # another shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason=CPU_REASON)
@pytest.mark.parametrize("rel_path", [SEARCH_R18, RETINA_SEARCH_R18])
def test_graphed_head_equals_the_eager_head_forward_and_backward_on_a_gpu(rel_path):
    model = _model("cuda", rel_path)
    reference = copy.deepcopy(model)
    assert enable_cuda_graphs(model)
    for step in range(3):  # eager, captured, replayed
        features = _features(model, "cuda")
        grads = []
        for m in (model, reference):
            m.zero_grad(set_to_none=True)
            out = m.head([f.clone().requires_grad_() for f in features])
            sum(o.float().square().mean() for o in sum(out, [])).backward()
            grads.append([p.grad for p in m.head.parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=f"step {step}")
    assert len(model.head.forward.graphs) == 1
