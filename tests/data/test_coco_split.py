"""Splitting a COCO-format JSON file by image (fad.data.coco_split)."""

import json

import pytest

from fad.data.coco_split import main, split_coco


def _coco(num_images: int) -> dict:
    return {
        "info": {"description": "test"},
        "images": [{"id": i, "file_name": f"{i}.png"} for i in range(1, num_images + 1)],
        "annotations": [
            {"id": 10 * i + k, "image_id": i, "category_id": 1}
            for i in range(1, num_images + 1)
            for k in range(i % 3)  # 0, 1 or 2 annotations per image
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }


def test_the_splits_are_disjoint_complete_and_keep_each_images_annotations():
    coco = _coco(20)
    first, second = split_coco(coco, fraction=0.25, seed=0)
    ids = [{im["id"] for im in split["images"]} for split in (first, second)]
    assert len(ids[0]) == 5 and not ids[0] & ids[1] and ids[0] | ids[1] == set(range(1, 21))
    for split, kept in zip((first, second), ids):
        assert split["categories"] == coco["categories"] and split["info"] == coco["info"]
        assert {a["image_id"] for a in split["annotations"]} <= kept
    assert len(first["annotations"]) + len(second["annotations"]) == len(coco["annotations"])


def test_the_draw_follows_the_seed():
    coco = _coco(30)
    same = [split_coco(coco, fraction=0.5, seed=s)[0]["images"] for s in (3, 3, 4)]
    assert same[0] == same[1] and same[0] != same[2]


@pytest.mark.parametrize("fraction, num_images", [(0.0, 10), (1.0, 10), (0.5, 1), (0.01, 10)])
def test_splits_that_would_be_empty_are_refused(fraction, num_images):
    with pytest.raises(ValueError):
        split_coco(_coco(num_images), fraction=fraction, seed=0)


def test_cli_writes_both_files(tmp_path, capsys):
    source = tmp_path / "all.json"
    source.write_text(json.dumps(_coco(10)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main([str(source), "--output", str(a), str(b), "--seed", "1"]) == 0
    assert len(json.loads(a.read_text())["images"]) == 5
    assert "a.json: 5 images" in capsys.readouterr().out


def test_cli_names_a_missing_file_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "gone.json"), "--output", "a.json", "b.json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("usage:") is False and "gone.json" in err[-1]
