"""Deployment: FAD detectors traced with detectron2's TracingAdapter give the eager model's
detections, in TorchScript and in ONNX, at the traced size and at others."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the export tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from fad.data.synthetic import render_synthetic_image  # noqa: E402
from fad.engine.export import (  # noqa: E402
    OUTPUT_NAMES,
    check_export_options,
    export_model,
    instances_outputs,
    load_exported,
    run_exported,
    sample_image,
)
from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS, as_genotype  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "fcos": "configs/fad/augment/fad_fcos_R_18_synthetic.py",
    "retinanet": "configs/fad/augment/fad_retinanet_R_18_synthetic.py",
}
#: The original size of the second test image. Images are resized as the test loader resizes
#: (short side 128, long side at most 128) and padded to a multiple of 32 inside the model: the
#: sample image (480x640) is traced at 96x128, where P5 is 3x4; this one runs at 128x85, padded
#: to 128x96, where P5 is 4x3, so the dilated convs see maps whose sides divide otherwise by 2.
OTHER_SIZE = (300, 200)
#: Scores and classes must agree within 1e-4; boxes (pixels, up to 128) within 1e-4 plus 1e-5
#: of their value: ONNX Runtime's convolutions round differently from PyTorch's, by about 1e-6
#: relative (1e-4 px on a 120 px coordinate).
TOLERANCE = 1e-4
BOX_RTOL = 1e-5
NEEDS_ONNX = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="onnx and onnxruntime are not installed (pip install -e '.[dev]' installs them)",
)


def _spread_scores(model: nn.Module) -> None:
    """Give the class (and centerness) logits the spread of a trained model's.

    At init every logit sits near the focal-loss prior, so many scores tie to the last bits, and
    the eager model (polyphase dilated convs on the CPU) and the traced one (direct convs) may
    order those ties differently. A trained model's scores are spread out.
    """
    torch.manual_seed(1)
    for name in ("cls_score", "ctrness"):
        conv = getattr(model.head, name, None)
        if conv is not None:
            nn.init.normal_(conv.weight, std=0.1)
            nn.init.zeros_(conv.bias)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def detector(request):
    """(config, model) of a FAD detector with the paper's genotypes, in eval mode."""
    cfg = LazyConfig.load(str(ROOT / CONFIGS[request.param]))
    assert as_genotype(cfg.model.head.box_tower.genotype) == FAD_PAPER_BOX
    assert as_genotype(cfg.model.head.cls_tower.genotype) == FAD_PAPER_CLS
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    _spread_scores(model)
    return cfg, model


def _test_image(cfg, tmp_path: Path, size) -> torch.Tensor:
    path = tmp_path / f"image_{size[0]}x{size[1]}.png"
    rgb = render_synthetic_image(seed=3, index=2, image_size=size).image
    Image.fromarray(rgb).save(path)
    return sample_image(cfg, str(path))["image"]


def _assert_same_detections(model, exported, image: torch.Tensor) -> None:
    with torch.no_grad():
        want = instances_outputs(model([{"image": image}])[0]["instances"])
    got = run_exported(exported, image)
    assert len(want[0]) > 10, "too few detections to compare"
    for name, a, b in zip(OUTPUT_NAMES, want, got):
        assert a.shape == b.shape, name
        if name in ("pred_classes", "image_size"):
            assert torch.equal(a.long(), b.long()), name
        else:
            rtol = BOX_RTOL if name == "pred_boxes" else 0.0
            torch.testing.assert_close(b, a, atol=TOLERANCE, rtol=rtol, msg=name)


@pytest.fixture(scope="module")
def torchscript_export(detector, tmp_path_factory):
    cfg, model = detector
    out = tmp_path_factory.mktemp("torchscript")
    path, _ = export_model(model, sample_image(cfg)["image"], fmt="torchscript", output_dir=out)
    return path


def test_torchscript_export_writes_the_model_and_its_graph(torchscript_export):
    out = Path(torchscript_export).parent
    assert Path(torchscript_export).name == "model.ts"
    assert "aten::_convolution" in (out / "model_ts_IR.txt").read_text()


@pytest.mark.parametrize("size", [None, OTHER_SIZE], ids=["traced_size", "other_size"])
def test_torchscript_export_gives_the_eager_detections(
    detector, torchscript_export, size, tmp_path
):
    cfg, model = detector
    image = sample_image(cfg)["image"] if size is None else _test_image(cfg, tmp_path, size)
    _assert_same_detections(model, load_exported(torchscript_export), image)


@pytest.mark.slow  # an ONNX export and an onnxruntime session: the longest tests here
@NEEDS_ONNX
def test_onnx_export_runs_in_onnxruntime_with_the_eager_detections(detector, tmp_path):
    cfg, model = detector
    path, _ = export_model(model, sample_image(cfg)["image"], fmt="onnx", output_dir=tmp_path)
    session = load_exported(path)
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    for size in [None, OTHER_SIZE]:
        image = sample_image(cfg)["image"] if size is None else _test_image(cfg, tmp_path, size)
        _assert_same_detections(model, session, image)


def test_sample_image_is_resized_as_the_test_loader_resizes(detector):
    cfg, _ = detector
    inputs = sample_image(cfg)
    assert (inputs["height"], inputs["width"]) == (480, 640)
    assert inputs["image"].shape == (3, 96, 128) and inputs["image"].dtype == torch.float32
    assert 0 <= inputs["image"].min() and inputs["image"].max() <= 255


def test_export_refuses_scripting_with_the_reason():
    with pytest.raises(ValueError, match="scripting is not supported: .* use --export-method"):
        check_export_options(method="scripting", fmt="torchscript")


def test_export_refuses_a_model_in_training_mode(detector):
    cfg, model = detector
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            export_model(model, sample_image(cfg)["image"], fmt="torchscript", output_dir="x")
    finally:
        model.eval()
