"""The fixed canvas (fad.modeling.canvas): fixed batch shapes, image sizes and boxes unchanged."""

import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the model tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.structures import ImageList  # noqa: E402

from fad.modeling.canvas import FixedCanvas  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _batch(*sizes):
    g = torch.Generator().manual_seed(0)
    return ImageList.from_tensors([torch.rand(3, h, w, generator=g) + 1 for h, w in sizes], 32)


@pytest.mark.parametrize(
    "sizes, canvas",
    [
        ([(416, 555), (389, 693)], (416, 704)),  # landscape: short side x long side
        ([(555, 416), (693, 389)], (704, 416)),  # portrait: the transpose
        ([(416, 416)], (704, 416)),  # square counts as portrait, as detectron2 groups it
    ],
)
def test_a_batch_is_padded_to_its_orientations_canvas_and_keeps_its_image_sizes(sizes, canvas):
    batch = _batch(*sizes)
    out = FixedCanvas(short_side=416, max_size=693, enabled=True)(batch, size_divisibility=32)
    assert tuple(out.tensor.shape) == (len(sizes), 3, *canvas)
    assert out.image_sizes == batch.image_sizes
    h, w = batch.tensor.shape[-2:]
    assert torch.equal(out.tensor[..., :h, :w], batch.tensor)
    assert not out.tensor[..., h:, :].any() and not out.tensor[..., :, w:].any()


def test_the_canvas_of_multi_scale_training_is_the_largest_scale():
    canvas = FixedCanvas(short_side=(640, 800), max_size=1333)
    assert canvas.size(landscape=True, size_divisibility=32) == (800, 1344)
    assert canvas.size(landscape=False, size_divisibility=32) == (1344, 800)


def test_by_default_the_canvas_pads_cuda_batches_only():
    batch = _batch((100, 150))
    assert FixedCanvas(short_side=128, max_size=192)(batch, size_divisibility=32) is batch
    never = FixedCanvas(short_side=128, max_size=192, enabled=False)
    assert never(batch, size_divisibility=32) is batch


def test_a_batch_larger_than_its_canvas_keeps_its_size_and_warns_once(caplog):
    canvas = FixedCanvas(short_side=128, max_size=192, enabled=True)
    big = _batch((150, 300))
    with caplog.at_level(logging.WARNING, logger="fad.modeling.canvas"):
        assert canvas(big, size_divisibility=32) is big
        assert canvas(_batch((100, 400)), size_divisibility=32).tensor.shape[-1] == 416
    warnings = [r.getMessage() for r in caplog.records if r.name == "fad.modeling.canvas"]
    assert len(warnings) == 1 and "160x320" in warnings[0] and "128x192" in warnings[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(enabled="always"), "enabled must be"),
        (dict(enabled=1), "enabled must be"),
        (dict(short_side=800, max_size=600), "larger than max_size"),
        (dict(max_size=sys.maxsize), "needs the long side's limit"),
    ],
)
def test_bad_canvas_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FixedCanvas(**{"short_side": 128, "max_size": 192, **kwargs})


def test_a_trace_keeps_the_size_it_is_given():
    """An exported model serves any size and orientation: traces do not pad to the canvas."""
    canvas = FixedCanvas(short_side=64, max_size=96, enabled=True)

    def pad(tensor):
        return canvas(ImageList(tensor, [tuple(tensor.shape[-2:])]), size_divisibility=32).tensor

    assert pad(torch.zeros(1, 3, 64, 64)).shape[-2:] == (96, 64)  # eagerly: the canvas
    traced = torch.jit.trace(pad, torch.zeros(1, 3, 64, 96))
    assert traced(torch.zeros(1, 3, 96, 64)).shape[-2:] == (96, 64)
    assert traced(torch.zeros(1, 3, 64, 64)).shape[-2:] == (64, 64)


def test_configs_size_their_canvas_from_the_training_loader():
    for path, size in [
        ("configs/fad/search/fad_fcos_R_50_FPN_voc.py", (416, 704)),
        ("configs/fad/augment/fad_fcos_R_50_FPN_1x.py", (800, 1344)),
        ("configs/fad/augment/fad_fcos_R_101_FPN_2x_ms.py", (800, 1344)),
        ("configs/fad/search/fad_retinanet_R_50_FPN_voc.py", (416, 704)),
        ("configs/fad/augment/fad_retinanet_R_50_FPN_1x.py", (800, 1344)),
    ]:
        cfg = LazyConfig.load(str(ROOT / path))
        canvas = instantiate(cfg.model.fixed_canvas)
        assert canvas.size(landscape=True, size_divisibility=32) == size, path
        cfg.dataloader.train.mapper.augmentations[0].max_size = 1000  # an override carries over
        assert instantiate(cfg.model.fixed_canvas).max_size == 1000


@pytest.mark.parametrize("detector", ["fcos", "retinanet"])
def test_a_canvas_run_maps_its_boxes_back_to_the_image(detector):
    """The canvas changes the frame the network sees, not how boxes come back: a canvas run's
    detections are exactly those of the image placed on a larger frame of the mean colour (the
    canvas's zeros, once normalised), clipped to the image and rescaled to its output size.
    (The frame itself moves the head's GroupNorm statistics, as detectron2's own batch padding
    does; docs/BENCHMARKS.md.)"""
    cfg = LazyConfig.load(str(ROOT / f"configs/fad/augment/fad_{detector}_R_18_synthetic.py"))
    cfg.model.fixed_canvas.enabled = True
    cfg.model.fixed_canvas.max_size = 192  # a 128x192 canvas for the 100x120 image below
    cfg.model.test_score_thresh = 0.0  # random weights: keep the top detections
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    image = torch.randint(256, (3, 100, 120)).float()
    canvas = model.pixel_mean.expand(3, 128, 192).clone()
    canvas[:, :100, :120] = image
    with torch.no_grad():
        (on_canvas,) = model([{"image": image, "height": 200, "width": 240}])
        model.fixed_canvas = None
        (on_frame,) = model([{"image": canvas, "height": 256, "width": 384}])
    a, b = on_canvas["instances"], on_frame["instances"]
    assert a.image_size == (200, 240) and b.image_size == (256, 384)
    b.pred_boxes.clip((200, 240))
    b = b[b.pred_boxes.nonempty()]
    assert len(a) > 0 and len(a) == len(b)
    assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)
