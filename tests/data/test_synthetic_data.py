"""The synthetic COCO dataset generator (pure: runs without detectron2)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from fad.data import synthetic
from fad.data.synthetic import (
    SYNTHETIC_CLASSES,
    generate_synthetic_coco,
    main,
    render_synthetic_image,
)

# Small images keep the tests fast; max_size * sqrt(2) must fit in them.
SMALL = {"image_size": (64, 80), "min_size": 12, "max_size": 32}


def _generate(path, *, num_images=12, seed=0, **kwargs):
    return generate_synthetic_coco(
        output_dir=str(path), num_images=num_images, seed=seed, **{**SMALL, **kwargs}
    )


def _load(json_path):
    with open(json_path, encoding="utf-8") as f:
        return json.load(f)


def _pixels(json_path, file_name):
    return np.asarray(Image.open(os.path.join(os.path.dirname(json_path), "images", file_name)))


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    first = _generate(tmp_path / "a", seed=7)
    second = _generate(tmp_path / "b", seed=7)
    other = _generate(tmp_path / "c", seed=8)
    with open(first, "rb") as f1, open(second, "rb") as f2:
        assert f1.read() == f2.read()
    names = [image["file_name"] for image in _load(first)["images"]]
    for name in names:
        np.testing.assert_array_equal(_pixels(first, name), _pixels(second, name))
    assert any(not np.array_equal(_pixels(first, n), _pixels(other, n)) for n in names)
    assert _load(first)["annotations"] != _load(other)["annotations"]


def test_output_is_valid_coco_with_boxes_inside_the_images(tmp_path):
    coco = _load(_generate(tmp_path / "ds", num_images=20))
    assert coco["categories"] == [
        {"id": i, "name": name, "supercategory": "shape"}
        for i, name in enumerate(SYNTHETIC_CLASSES, start=1)
    ]
    images = {image["id"]: image for image in coco["images"]}
    assert len(images) == 20 and min(images) == 1
    annotation_ids = [a["id"] for a in coco["annotations"]]
    assert len(set(annotation_ids)) == len(annotation_ids) and min(annotation_ids) == 1
    assert {a["category_id"] for a in coco["annotations"]} == {1, 2, 3}
    for image in images.values():
        assert (image["height"], image["width"]) == SMALL["image_size"]
        pixels = _pixels(str(tmp_path / "ds" / "annotations.json"), image["file_name"])
        assert pixels.shape == (*SMALL["image_size"], 3)
    for a in coco["annotations"]:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["iscrowd"] == 0
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1
        assert x + w <= image["width"] and y + h <= image["height"]
        assert 0 < a["area"] <= w * h


def test_boxes_are_tight_around_the_visible_pixels(tmp_path):
    json_path = _generate(tmp_path / "ds", num_images=8, seed=3)
    coco = _load(json_path)
    for image in coco["images"]:
        index = image["id"] - 1
        rendered = render_synthetic_image(seed=3, index=index, **SMALL)
        saved = _pixels(json_path, image["file_name"])
        np.testing.assert_array_equal(saved, rendered.image)
        boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert boxes == [list(obj.bbox) for obj in rendered.objects]
        for obj in rendered.objects:
            x, y, w, h = obj.bbox
            inside = obj.mask[y : y + h, x : x + w]
            # Every visible pixel is in the box and the shape touches all four box edges.
            assert inside.sum() == obj.mask.sum() == obj.area
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
            # The saved pixels of the object are its flat fill colour.
            assert (saved[obj.mask] == obj.colour).all()


def test_empty_images_are_listed_without_annotations(tmp_path):
    coco = _load(_generate(tmp_path / "some", num_images=20, empty_fraction=0.1))
    annotated = {a["image_id"] for a in coco["annotations"]}
    empty = [image["id"] for image in coco["images"] if image["id"] not in annotated]
    assert len(empty) == 2
    assert not _load(_generate(tmp_path / "all", num_images=3, empty_fraction=1.0))["annotations"]
    none = _load(_generate(tmp_path / "none", num_images=10, empty_fraction=0.0))
    assert {a["image_id"] for a in none["annotations"]} == set(range(1, 11))


def test_existing_dataset_is_returned_without_regenerating(tmp_path, monkeypatch):
    json_path = _generate(tmp_path / "ds", num_images=4)

    def fail(*args, **kwargs):
        raise AssertionError("the dataset was regenerated")

    monkeypatch.setattr(synthetic, "render_synthetic_image", fail)
    assert _generate(tmp_path / "ds", num_images=4) == json_path
    with pytest.raises(ValueError, match="not generated with"):
        _generate(tmp_path / "ds", num_images=5)


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    real_render = synthetic.render_synthetic_image

    def render_then_fail(**kwargs):
        if kwargs["index"] == 3:
            raise KeyboardInterrupt
        return real_render(**kwargs)

    monkeypatch.setattr(synthetic, "render_synthetic_image", render_then_fail)
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path / "ds", num_images=6)
    assert os.listdir(tmp_path) == []  # neither the dataset nor the temporary directory
    monkeypatch.setattr(synthetic, "render_synthetic_image", real_render)
    assert len(_load(_generate(tmp_path / "ds", num_images=6))["images"]) == 6


def test_foreign_directory_is_not_overwritten(tmp_path):
    (tmp_path / "empty").mkdir()
    assert os.path.isfile(_generate(tmp_path / "empty", num_images=2))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="without annotations.json"):
        _generate(tmp_path / "busy", num_images=2)
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["busy", "empty"]


@pytest.mark.parametrize(
    "bad",
    [{"num_images": 0}, {"min_size": 2}, {"max_size": 8}, {"max_size": 50}, {"empty_fraction": 2}],
)
def test_invalid_parameters_are_rejected(tmp_path, bad):
    with pytest.raises(ValueError):
        _generate(tmp_path / "ds", **bad)
    assert not (tmp_path / "ds").exists()


def test_cli_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--output-dir", str(out), "--num-images", "3", "--seed", "4"]
    assert main([*argv, "--image-size", "96", "96"]) == 0
    json_path = capsys.readouterr().out.strip()
    assert json_path == str(out / "annotations.json")
    coco = _load(json_path)
    assert len(coco["images"]) == 3 and coco["images"][0]["height"] == 96


def test_module_cli_runs_without_detectron2_and_torch(tmp_path):
    # Marking the packages as missing in sys.modules makes their imports fail, as if not installed.
    script = textwrap.dedent(
        """
        import runpy, sys
        sys.modules["detectron2"] = None
        sys.modules["torch"] = None
        sys.argv = ["synthetic", "--output-dir", sys.argv[1], "--num-images", "2", "--seed", "1"]
        runpy.run_module("fad.data.synthetic", run_name="__main__")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ds")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(_load(result.stdout.strip())["images"]) == 2


def test_masks_are_the_visible_pixels_as_rle(tmp_path):
    mask_util = pytest.importorskip("pycocotools.mask", reason="masks are encoded by pycocotools")
    coco = _load(_generate(tmp_path / "masks", masks=True))
    plain = _load(_generate(tmp_path / "plain"))
    assert plain["info"]["generator"] == {
        k: v for k, v in coco["info"]["generator"].items() if k != "masks"
    }
    assert all("segmentation" not in a for a in plain["annotations"])
    assert [a["bbox"] for a in coco["annotations"]] == [a["bbox"] for a in plain["annotations"]]
    for image in coco["images"][:6]:
        rendered = render_synthetic_image(seed=0, index=image["id"] - 1, **SMALL)
        found = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert len(found) == len(rendered.objects)
        for annotation, obj in zip(found, rendered.objects):
            rle = annotation["segmentation"]
            assert rle["size"] == [image["height"], image["width"]]
            np.testing.assert_array_equal(mask_util.decode(rle).astype(bool), obj.mask)
            assert int(mask_util.area(rle)) == annotation["area"]
