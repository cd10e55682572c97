"""Datasets for FAD on detectron2: the synthetic splits, COCO-format datasets, pre-flight checks.

Importing it registers, reading nothing, :data:`SYNTHETIC_SPLITS` under :func:`synthetic_root`
(``fad_synthetic_{train,arch,val}``: weights, alphas, evaluation; ``fad_synthetic_mask_*``, the
same with masks); :func:`prepare_datasets` generates them. detectron2 registers its VOC and COCO.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from .synthetic import ANNOTATIONS_FILE, IMAGES_DIR, SYNTHETIC_CLASSES, generate_synthetic_coco

__all__ = [
    "SYNTHETIC_SPLITS",
    "check_dataset_files",
    "check_disjoint_datasets",
    "check_masks",
    "dataset_num_classes",
    "prepare_datasets",
    "register_coco_dataset",
    "register_synthetic_datasets",
    "synthetic_root",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyntheticSplit:
    """A synthetic split: its ``subdir`` under :func:`synthetic_root`, ``seed``, ``num_images``
    and whether its annotations hold instance ``masks``."""

    subdir: str
    seed: int
    num_images: int
    masks: bool = False


#: The synthetic splits of FAD's configs by name; the mask splits have their own directories.
SYNTHETIC_SPLITS = {
    f"fad_synthetic_{kind}{split}": SyntheticSplit(
        subdir=f"{kind}{split}", seed=seed, num_images=num_images, masks=kind == "mask_"
    )
    for kind in ("", "mask_")
    for split, seed, num_images in (("train", 0, 256), ("arch", 1, 64), ("val", 2, 64))
}


def synthetic_root() -> str:
    """Returns the absolute directory of the synthetic splits, read from the environment now:
    ``$FAD_SYNTHETIC_ROOT``, else ``$DETECTRON2_DATASETS/fad_synthetic`` (default ``datasets``)."""
    root = os.environ.get("FAD_SYNTHETIC_ROOT")
    if not root:
        root = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "fad_synthetic")
    return os.path.abspath(os.path.expanduser(root))  # survives a change of directory


def register_synthetic_datasets(root: Optional[str] = None) -> None:
    """Registers the synthetic splits under ``root`` (default :func:`synthetic_root`), replacing
    those registered before."""
    root = root or synthetic_root()
    for name, split in SYNTHETIC_SPLITS.items():
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
        split_dir = os.path.join(root, split.subdir)
        register_coco_instances(
            name,
            {"thing_classes": list(SYNTHETIC_CLASSES)},
            os.path.join(split_dir, ANNOTATIONS_FILE),
            os.path.join(split_dir, IMAGES_DIR),
        )


def prepare_datasets(names: Sequence[str]) -> None:
    """Generates the synthetic splits among ``names`` not on disk yet; ``search_net.py`` and
    ``train_net.py`` call it once, in the main process, before workers start."""
    for name, split in SYNTHETIC_SPLITS.items():
        if name in names:
            generate_synthetic_coco(
                output_dir=os.path.dirname(MetadataCatalog.get(name).json_file),
                num_images=split.num_images,
                seed=split.seed,
                masks=split.masks,
            )


def _meta(name: str) -> dict:
    if name not in DatasetCatalog:
        raise KeyError(f"Dataset {name!r} is not registered")
    return MetadataCatalog.get(name).as_dict()


def register_coco_dataset(*, name: str, json_file: str, image_root: str) -> None:
    """Registers a COCO-format dataset as ``--register-coco`` does, reading nothing; again with
    the same files it does nothing, with others it raises ValueError.

    Args:
        name: dataset name to register.
        json_file: COCO instances JSON file.
        image_root: directory the JSON's ``file_name`` entries are relative to.
    """
    files = tuple(os.path.abspath(os.path.expanduser(p)) for p in (json_file, image_root))
    if name not in DatasetCatalog:
        register_coco_instances(name, {}, *files)
        return
    registered = tuple(_meta(name).get(key) for key in ("json_file", "image_root"))
    if registered != files:
        raise ValueError(
            f"Dataset {name!r} is already registered with other files "
            f"(json_file={registered[0]}, image_root={registered[1]})"
        )


def check_dataset_files(names: Sequence[str]) -> None:
    """Checks before training that the files of each dataset exist: a COCO one's JSON file and
    ``image_root``, a VOC one's ``Annotations``, ``JPEGImages`` and ``ImageSets/Main/<split>.txt``.
    Raises KeyError for an unregistered name, FileNotFoundError naming every missing path."""
    problems = []
    for name in dict.fromkeys(names):
        meta = _meta(name)
        files, dirs = [meta.get("json_file")], [meta.get("image_root")]
        if "dirname" in meta:
            dirs = [os.path.join(meta["dirname"], d) for d in ("Annotations", "JPEGImages")]
            files = [os.path.join(meta["dirname"], "ImageSets", "Main", f"{meta['split']}.txt")]
        for paths, exists in ((files, os.path.isfile), (dirs, os.path.isdir)):
            for path in paths:
                # Remote paths (manifold://) cannot be checked here; the builtin ones are relative.
                if path and "://" not in path and not exists(path):
                    problems.append(f"dataset {name!r} needs {os.path.abspath(path)}")
    if problems:
        raise FileNotFoundError(
            f"Missing dataset files: {'; '.join(problems)}. For detectron2's builtin datasets, set "
            "DETECTRON2_DATASETS to the directory that holds them (see detectron2's "
            "datasets/README.md); for --register-coco NAME JSON_FILE IMAGE_ROOT, check the paths."
        )


def _load_coco(name: str) -> Optional[dict]:
    """The COCO dict of a dataset registered from a JSON file, checked; None for another layout."""
    json_file = _meta(name).get("json_file")
    if json_file is None:
        return None
    with open(json_file, encoding="utf-8") as f:
        try:
            coco = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"Dataset {name!r}: {json_file} is not valid JSON ({err})") from err
    categories = coco.get("categories") if isinstance(coco, dict) else None
    if not isinstance(categories, list) or not categories:
        problem = "is not a COCO-style annotation file (it needs a non-empty 'categories' list)"
    elif not all(isinstance(c, dict) and "id" in c and "name" in c for c in categories):
        problem = "has a category that needs 'id' and 'name'"
    elif not coco.get("images"):  # else detectron2 stops every worker, after building the model
        problem = "has no images"
    else:
        return coco
    raise ValueError(f"Dataset {name!r}: {json_file} {problem}")


def dataset_num_classes(name: str) -> int:
    """The number of classes of a registered dataset without loading it: its ``thing_classes``,
    else the categories of its COCO JSON file (checked on the way: ValueError if unusable)."""
    meta = _meta(name)
    if "thing_classes" in meta:
        return len(meta["thing_classes"])
    if "json_file" not in meta:
        raise ValueError(f"Dataset {name!r} has no thing_classes in its metadata")
    return len(_load_coco(name)["categories"])


def _sources(name: str) -> set:
    """What a dataset reads, as comparable keys: its JSON file and the images it lists, or its
    VOC directory and image sets (``trainval`` is ``train`` plus ``val``)."""
    meta = _meta(name)
    if "dirname" in meta:
        splits = {"trainval": ("train", "val")}.get(meta["split"], (meta["split"],))
        return {("voc", os.path.realpath(meta["dirname"]), split) for split in splits}
    if "json_file" not in meta:
        return set()  # a layout this check does not know: only the names are compared
    root = meta.get("image_root", "")
    return {("json", os.path.realpath(meta["json_file"]))} | {
        ("image", os.path.realpath(os.path.join(root, im["file_name"])))
        for im in _load_coco(name)["images"]
    }


def check_disjoint_datasets(first: Sequence[str], second: Sequence[str]) -> None:
    """Checks that two lists of datasets (the search's weight and alpha splits) share no name,
    JSON file, VOC image set (``voc_2012_trainval`` holds ``voc_2012_val``) or image file;
    ValueError names the first pair that does."""
    for a in first:
        for b in second:
            shared = set() if a == b else _sources(a) & _sources(b)
            images = sorted(key[1] for key in shared if key[0] == "image")
            if a == b or len(images) < len(shared):
                raise ValueError(f"{a!r} and {b!r} are the same{'' if a == b else ' data'}")
            if images:
                raise ValueError(
                    f"{a!r} and {b!r} share {len(images)} images (e.g. {images[0]}): split "
                    "the annotations by image, e.g. with python -m fad.data.coco_split"
                )


def check_masks(names: Sequence[str]) -> None:
    """Checks for a mask head that every annotation has a ``segmentation`` (detectron2's COCO
    has; VOC's boxes do not); ValueError names the first dataset without."""
    for name in dict.fromkeys(names):
        if name.startswith("coco_") and name in DatasetCatalog:
            continue  # detectron2's builtin COCO: instances with masks
        coco = _load_coco(name)
        if coco is None or not all("segmentation" in a for a in coco.get("annotations", [])):
            raise ValueError(
                f"dataset {name!r} has no instance masks ('segmentation' in every annotation) for "
                "the mask head: use one with masks (the synthetic data's fad_synthetic_mask_*)"
            )


register_synthetic_datasets()
