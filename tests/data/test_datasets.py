"""Dataset registration on detectron2: synthetic splits, COCO datasets, file checks."""

import argparse
import itertools
import json
import os

import pytest

pytest.importorskip(
    "detectron2", reason="detectron2 is not installed: the dataset registration tests need it"
)

import torch  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.data.datasets import register_pascal_voc  # noqa: E402
from detectron2.evaluation import COCOEvaluator  # noqa: E402
from detectron2.structures import Boxes, BoxMode, Instances  # noqa: E402

from fad.data import (  # noqa: E402
    SYNTHETIC_CLASSES,
    SYNTHETIC_SPLITS,
    add_dataset_arguments,
    check_dataset_files,
    check_disjoint_datasets,
    dataset_num_classes,
    ensure_synthetic_dataset,
    register_coco_dataset,
    register_datasets_from_args,
    register_synthetic_dataset,
    synthetic_root,
)

_counter = itertools.count()


@pytest.fixture
def names():
    """Yields a factory of fresh dataset names; unregisters them after the test."""
    created = []

    def new_name():
        created.append(f"fad_test_dataset_{next(_counter)}")
        return created[-1]

    yield new_name
    for name in created:
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
        SYNTHETIC_SPLITS.pop(name, None)


@pytest.fixture
def synthetic_root_dir(tmp_path, monkeypatch):
    root = tmp_path / "synthetic"
    monkeypatch.setenv("FAD_SYNTHETIC_ROOT", str(root))
    return root


@pytest.fixture
def fresh_val_split():
    """Re-registers fad_synthetic_val around the test, so paths fixed by it do not leak."""

    def reregister():
        split = SYNTHETIC_SPLITS.pop("fad_synthetic_val")
        DatasetCatalog.remove("fad_synthetic_val")
        MetadataCatalog.remove("fad_synthetic_val")
        register_synthetic_dataset(
            name="fad_synthetic_val",
            seed=split.seed,
            num_images=split.num_images,
            subdir=split.subdir,
        )

    reregister()
    yield "fad_synthetic_val"
    reregister()


def _write_coco(path, *, categories=None, with_categories=True):
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 10, "width": 20}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "bbox": [1, 2, 3, 4],
                "area": 12,
                "iscrowd": 0,
            }
        ],
    }
    if with_categories:
        coco["categories"] = categories or [{"id": 5, "name": "zebra"}, {"id": 2, "name": "ant"}]
    path.write_text(json.dumps(coco))
    return str(path)


def test_default_splits_are_registered_lazily(fresh_val_split, synthetic_root_dir):
    assert {
        n: (s.seed, s.num_images)
        for n, s in SYNTHETIC_SPLITS.items()
        if n.startswith("fad_synthetic_")
    } == {
        "fad_synthetic_train": (0, 256),
        "fad_synthetic_arch": (1, 64),
        "fad_synthetic_val": (2, 64),
    }
    for name in SYNTHETIC_SPLITS:
        assert name in DatasetCatalog
        assert dataset_num_classes(name) == len(SYNTHETIC_CLASSES)
        assert MetadataCatalog.get(name).evaluator_type == "coco"
    assert "json_file" not in MetadataCatalog.get(fresh_val_split).as_dict()
    assert not synthetic_root_dir.exists()


def test_synthetic_split_is_generated_under_the_root_on_first_load(
    fresh_val_split, synthetic_root_dir
):
    records = DatasetCatalog.get(fresh_val_split)
    assert len(records) == 64
    assert os.path.isfile(synthetic_root_dir / "val" / "annotations.json")
    meta = MetadataCatalog.get(fresh_val_split)
    assert meta.json_file == str(synthetic_root_dir / "val" / "annotations.json")
    assert meta.thing_classes == list(SYNTHETIC_CLASSES)
    assert all(os.path.isfile(r["file_name"]) for r in records)
    empty = [r for r in records if not r["annotations"]]
    assert len(empty) == 6  # floor(64 * 0.1), loaded as records without annotations
    box = records[0]["annotations"][0]
    assert box["bbox_mode"] == BoxMode.XYWH_ABS and box["category_id"] in (0, 1, 2)


def test_root_falls_back_to_detectron2_datasets(monkeypatch, tmp_path):
    monkeypatch.delenv("FAD_SYNTHETIC_ROOT", raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    assert synthetic_root() == str(tmp_path / "fad_synthetic")


def test_coco_evaluator_works_before_the_dataset_was_loaded(
    names, synthetic_root_dir, tmp_path, monkeypatch
):
    name = names()
    register_synthetic_dataset(name=name, seed=5, num_images=10, subdir="tiny")
    evaluator = COCOEvaluator(name, output_dir=str(tmp_path / "eval"))
    json_file = str(synthetic_root_dir / "tiny" / "annotations.json")
    assert MetadataCatalog.get(name).json_file == json_file
    assert ensure_synthetic_dataset(name) == json_file

    # A later change of the environment does not move a split whose paths are fixed.
    monkeypatch.setenv("FAD_SYNTHETIC_ROOT", str(tmp_path / "elsewhere"))
    records = DatasetCatalog.get(name)
    assert all(r["file_name"].startswith(str(synthetic_root_dir)) for r in records)

    # The ground truth as predictions scores 100 AP: ids and the category mapping line up.
    evaluator.reset()
    for record in records:
        boxes = [
            BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS)
            for a in record["annotations"]
        ]
        instances = Instances((record["height"], record["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        instances.scores = torch.ones(len(boxes))
        instances.pred_classes = torch.tensor(
            [a["category_id"] for a in record["annotations"]], dtype=torch.int64
        )
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)


def test_ensure_rejects_unknown_names():
    with pytest.raises(KeyError, match="not a registered synthetic dataset"):
        ensure_synthetic_dataset("coco_2017_val")


def test_register_coco_dataset(names, tmp_path):
    name = names()
    json_file = _write_coco(tmp_path / "a.json")
    (tmp_path / "images").mkdir()
    classes = register_coco_dataset(
        name=name, json_file=json_file, image_root=str(tmp_path / "images")
    )
    assert classes == ["ant", "zebra"]  # sorted by category id, as load_coco_json orders them
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == classes and meta.evaluator_type == "coco"
    assert dataset_num_classes(name) == 2
    records = DatasetCatalog.get(name)
    assert records[0]["annotations"][0]["category_id"] == 1  # category 5 is "zebra"
    # Registering the same files again is a no-op; other files under the same name are an error.
    again = register_coco_dataset(
        name=name, json_file=json_file, image_root=str(tmp_path / "images")
    )
    assert again == classes
    other = _write_coco(tmp_path / "b.json")
    with pytest.raises(ValueError, match=f"{name}.*already registered"):
        register_coco_dataset(name=name, json_file=other, image_root=str(tmp_path / "images"))
    with pytest.raises(ValueError, match="already registered"):
        register_coco_dataset(name="voc_2012_val", json_file=json_file, image_root=str(tmp_path))


def test_register_coco_dataset_errors(names, tmp_path):
    name = names()
    good_json = _write_coco(tmp_path / "good.json")
    missing = str(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match=f"{name}.*{missing}"):
        register_coco_dataset(name=name, json_file=missing, image_root=str(tmp_path))
    no_dir = str(tmp_path / "no_images")
    with pytest.raises(FileNotFoundError, match=f"{name}.*{no_dir}"):
        register_coco_dataset(name=name, json_file=good_json, image_root=no_dir)
    no_categories = _write_coco(tmp_path / "nocat.json", with_categories=False)
    with pytest.raises(ValueError, match=f"{name}.*nocat.json.*categories"):
        register_coco_dataset(name=name, json_file=no_categories, image_root=str(tmp_path))
    no_images = tmp_path / "noimg.json"
    no_images.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]})
    )
    with pytest.raises(ValueError, match=f"{name}.*noimg.json has no images"):
        register_coco_dataset(name=name, json_file=str(no_images), image_root=str(tmp_path))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        register_coco_dataset(
            name=name, json_file=str(tmp_path / "broken.json"), image_root=str(tmp_path)
        )
    assert name not in DatasetCatalog


def test_register_coco_from_command_line(names, tmp_path):
    parser = argparse.ArgumentParser()
    add_dataset_arguments(parser)
    assert register_datasets_from_args(parser.parse_args([])) == {}
    first, second = names(), names()
    json_file = _write_coco(tmp_path / "a.json")
    other = _write_coco(tmp_path / "b.json", categories=[{"id": 1, "name": "cat"}])
    root = str(tmp_path)
    args = parser.parse_args(
        ["--register-coco", first, json_file, root, "--register-coco", second, other, root]
    )
    assert args.register_coco == [[first, json_file, root], [second, other, root]]
    assert register_datasets_from_args(args) == {first: ["ant", "zebra"], second: ["cat"]}
    assert first in DatasetCatalog and second in DatasetCatalog


def test_check_dataset_files_reports_a_missing_coco_json(names, tmp_path):
    name = names()
    json_file = tmp_path / "a.json"
    _write_coco(json_file)
    register_coco_dataset(name=name, json_file=str(json_file), image_root=str(tmp_path))
    check_dataset_files([name, "fad_synthetic_train"])
    json_file.unlink()
    with pytest.raises(FileNotFoundError, match=f"'{name}' needs {json_file}") as error:
        check_dataset_files([name])
    assert "DETECTRON2_DATASETS" in str(error.value)


def test_check_dataset_files_reports_missing_voc_dirs(names, tmp_path):
    name = names()
    voc = tmp_path / "VOC2012"
    register_pascal_voc(name, str(voc), "train", 2012)
    with pytest.raises(FileNotFoundError) as error:
        check_dataset_files([name])
    message = str(error.value)
    for part in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main", "train.txt")):
        assert f"'{name}' needs {voc / part}" in message
    for part in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / part).mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("2008_000001\n")
    check_dataset_files([name])


def test_disjoint_datasets_check_compares_names_files_and_voc_image_sets(names, tmp_path):
    check_disjoint_datasets(["fad_synthetic_train"], ["fad_synthetic_arch"])
    check_disjoint_datasets(["voc_2012_train"], ["voc_2012_val"])
    check_disjoint_datasets(["voc_2007_trainval"], ["voc_2012_val"])  # other images
    with pytest.raises(
        ValueError, match="'fad_synthetic_arch' and 'fad_synthetic_arch' are the same$"
    ):
        check_disjoint_datasets(
            ["fad_synthetic_train", "fad_synthetic_arch"], ["fad_synthetic_arch"]
        )
    with pytest.raises(
        ValueError, match="'voc_2012_trainval' and 'voc_2012_val' are the same data"
    ):
        check_disjoint_datasets(["voc_2012_trainval"], ["voc_2012_val"])
    # Two names of one JSON file (relative and absolute paths alike).
    a, b, c = names(), names(), names()
    json_file = _write_coco(tmp_path / "a.json")
    register_coco_dataset(name=a, json_file=json_file, image_root=str(tmp_path))
    register_coco_dataset(name=b, json_file=os.path.relpath(json_file), image_root=str(tmp_path))
    register_coco_dataset(
        name=c, json_file=_write_coco(tmp_path / "c.json"), image_root=str(tmp_path)
    )
    check_disjoint_datasets([a], [c])
    with pytest.raises(ValueError, match=f"'{a}' and '{b}' are the same data"):
        check_disjoint_datasets([a], [b])


def test_unknown_datasets_are_named():
    with pytest.raises(KeyError, match="no_such_dataset"):
        check_dataset_files(["no_such_dataset"])
    with pytest.raises(KeyError, match="no_such_dataset"):
        dataset_num_classes("no_such_dataset")


def test_builtin_datasets_are_registered():
    for name in ("voc_2012_train", "voc_2012_val", "coco_2017_train", "coco_2017_val"):
        assert name in DatasetCatalog
    assert dataset_num_classes("voc_2012_val") == 20
    assert dataset_num_classes("coco_2017_val") == 80
