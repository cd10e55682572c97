"""Dataset registration on detectron2: synthetic splits, COCO datasets, pre-flight checks."""

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
    check_dataset_files,
    check_disjoint_datasets,
    check_masks,
    dataset_num_classes,
    prepare_datasets,
    register_coco_dataset,
    register_synthetic_datasets,
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


@pytest.fixture
def moved_synthetic(tmp_path, synthetic_root):
    """The synthetic splits registered under an empty root for the test, then moved back."""
    root = tmp_path / "synthetic"
    register_synthetic_datasets(str(root))
    yield root
    register_synthetic_datasets(str(synthetic_root))


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


def test_synthetic_splits_are_registered_without_touching_the_disk(moved_synthetic):
    splits = {n: (s.subdir, s.seed, s.num_images, s.masks) for n, s in SYNTHETIC_SPLITS.items()}
    assert splits == {
        "fad_synthetic_train": ("train", 0, 256, False),
        "fad_synthetic_arch": ("arch", 1, 64, False),
        "fad_synthetic_val": ("val", 2, 64, False),
        "fad_synthetic_mask_train": ("mask_train", 0, 256, True),
        "fad_synthetic_mask_arch": ("mask_arch", 1, 64, True),
        "fad_synthetic_mask_val": ("mask_val", 2, 64, True),
    }
    for name, split in SYNTHETIC_SPLITS.items():
        meta = MetadataCatalog.get(name)
        assert meta.json_file == str(moved_synthetic / split.subdir / "annotations.json")
        assert meta.image_root == str(moved_synthetic / split.subdir / "images")
        assert meta.evaluator_type == "coco"
        assert dataset_num_classes(name) == len(SYNTHETIC_CLASSES)
    assert not moved_synthetic.exists()


def test_prepare_generates_the_named_splits_once(moved_synthetic):
    prepare_datasets(["fad_synthetic_val", "coco_2017_val"])  # other datasets are left alone
    assert sorted(os.listdir(moved_synthetic)) == ["val"]
    json_file = moved_synthetic / "val" / "annotations.json"
    stamp = json_file.stat().st_mtime_ns
    prepare_datasets(["fad_synthetic_val"])
    assert json_file.stat().st_mtime_ns == stamp

    records = DatasetCatalog.get("fad_synthetic_val")
    assert len(records) == 64
    assert MetadataCatalog.get("fad_synthetic_val").thing_classes == list(SYNTHETIC_CLASSES)
    assert all(os.path.isfile(r["file_name"]) for r in records)
    empty = [r for r in records if not r["annotations"]]
    assert len(empty) == 6  # floor(64 * 0.1), loaded as records without annotations
    box = records[0]["annotations"][0]
    assert box["bbox_mode"] == BoxMode.XYWH_ABS and box["category_id"] in (0, 1, 2)


def test_root_falls_back_to_detectron2_datasets(monkeypatch, tmp_path):
    monkeypatch.delenv("FAD_SYNTHETIC_ROOT", raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    assert synthetic_root() == str(tmp_path / "fad_synthetic")


def test_coco_evaluator_scores_the_ground_truth_100_ap(synthetic_root, tmp_path):
    evaluator = COCOEvaluator("fad_synthetic_val", output_dir=str(tmp_path / "eval"))
    records = DatasetCatalog.get("fad_synthetic_val")
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
    # Ids and the category mapping line up.
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)


def test_register_coco_dataset(names, tmp_path):
    name = names()
    json_file = _write_coco(tmp_path / "a.json")
    (tmp_path / "images").mkdir()
    register_coco_dataset(name=name, json_file=json_file, image_root=str(tmp_path / "images"))
    assert MetadataCatalog.get(name).evaluator_type == "coco"
    assert dataset_num_classes(name) == 2
    records = DatasetCatalog.get(name)
    assert MetadataCatalog.get(name).thing_classes == ["ant", "zebra"]  # by category id
    assert records[0]["annotations"][0]["category_id"] == 1  # category 5 is "zebra"
    # Registering the same files again is a no-op; other files under the same name are an error.
    register_coco_dataset(name=name, json_file=json_file, image_root=str(tmp_path / "images"))
    other = _write_coco(tmp_path / "b.json")
    with pytest.raises(ValueError, match=f"{name}.*already registered"):
        register_coco_dataset(name=name, json_file=other, image_root=str(tmp_path / "images"))
    with pytest.raises(ValueError, match="already registered"):
        register_coco_dataset(name="voc_2012_val", json_file=json_file, image_root=str(tmp_path))


def _no_images(path):
    path.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]})
    )
    return str(path)


@pytest.mark.parametrize(
    "write, message",
    [
        pytest.param(
            lambda p: _write_coco(p, with_categories=False), "is not a COCO-style", id="no_cats"
        ),
        pytest.param(
            lambda p: _write_coco(p, categories=[{"id": 1}]), "needs 'id' and 'name'", id="cats"
        ),
        pytest.param(_no_images, "has no images", id="no_images"),
        pytest.param(lambda p: p.write_text("{not json") and str(p), "not valid JSON", id="json"),
    ],
)
def test_unusable_coco_json_is_refused_by_the_class_count(names, tmp_path, write, message):
    name = names()
    json_file = write(tmp_path / "bad.json")
    register_coco_dataset(name=name, json_file=json_file, image_root=str(tmp_path))
    with pytest.raises(ValueError, match=f"{name}.*bad.json.*{message}"):
        dataset_num_classes(name)


def test_check_dataset_files_reports_a_missing_coco_json_and_image_root(names, tmp_path):
    name = names()
    json_file = tmp_path / "a.json"
    _write_coco(json_file)
    register_coco_dataset(name=name, json_file=str(json_file), image_root=str(tmp_path / "img"))
    with pytest.raises(FileNotFoundError, match=f"'{name}' needs {tmp_path / 'img'}"):
        check_dataset_files([name])
    (tmp_path / "img").mkdir()
    check_dataset_files([name])
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
        name=c, json_file=_write_coco(tmp_path / "c.json"), image_root=str(tmp_path / "c")
    )
    check_disjoint_datasets([a], [c])
    with pytest.raises(ValueError, match=f"'{a}' and '{b}' are the same data"):
        check_disjoint_datasets([a], [b])


def test_two_json_files_that_list_one_image_are_not_disjoint(names, tmp_path):
    a, b = names(), names()
    register_coco_dataset(name=a, json_file=_write_coco(tmp_path / "a.json"), image_root="x")
    register_coco_dataset(name=b, json_file=_write_coco(tmp_path / "b.json"), image_root="x")
    with pytest.raises(ValueError, match=f"'{a}' and '{b}' share 1 images .*x/a.png.*coco_split"):
        check_disjoint_datasets([a], [b])


def test_a_mask_head_needs_datasets_with_masks(names, synthetic_root, tmp_path):
    check_masks(["fad_synthetic_mask_train", "coco_2017_train"])
    name = names()
    register_coco_dataset(name=name, json_file=_write_coco(tmp_path / "a.json"), image_root="x")
    for dataset in (name, "fad_synthetic_train", "voc_2012_train"):
        with pytest.raises(ValueError, match=f"dataset '{dataset}' has no instance masks"):
            check_masks([dataset])


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
