"""Datasets for FAD on detectron2: the synthetic splits, COCO-format datasets, pre-flight checks.

Importing this module registers the synthetic splits with detectron2's
``register_coco_instances`` (nothing is read or written):

* ``fad_synthetic_train``: seed 0, 256 images, for the weight steps and for training;
* ``fad_synthetic_arch``: seed 1, 64 images, for the alpha steps of the search;
* ``fad_synthetic_val``: seed 2, 64 images, for evaluation.
* ``fad_synthetic_mask_train``, ``fad_synthetic_mask_arch``, ``fad_synthetic_mask_val``: the same
  images with instance masks, for Mask R-CNN.

They live under ``$FAD_SYNTHETIC_ROOT``, else ``$DETECTRON2_DATASETS/fad_synthetic`` (default
``./datasets/fad_synthetic``), read when this module is imported. :func:`prepare_datasets`
generates the splits a run needs; ``search_net.py`` and ``train_net.py`` call it once, in the main
process, before any worker starts.

PASCAL VOC 2012 and COCO 2017 (``voc_2012_train``, ``voc_2012_val``, ``coco_2017_train``, ...) are
registered by detectron2 itself when ``detectron2.data`` is imported, under
``$DETECTRON2_DATASETS``.
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
    "SyntheticSplit",
    "check_dataset_files",
    "check_disjoint_datasets",
    "check_masks",
    "dataset_num_classes",
    "prepare_datasets",
    "register_coco_dataset",
    "register_synthetic_datasets",
    "synthetic_root",
]

_FIX_HINT = (
    "For detectron2's builtin datasets, set DETECTRON2_DATASETS to the directory that holds them "
    "(see detectron2's datasets/README.md for the layout); for --register-coco NAME JSON_FILE "
    "IMAGE_ROOT, check the two paths."
)


@dataclasses.dataclass(frozen=True)
class SyntheticSplit:
    """How a synthetic split is generated.

    Attributes:
        subdir: directory of the split under :func:`synthetic_root`.
        seed: generator seed.
        num_images: number of images.
        masks: whether the annotations hold instance masks (``segmentation``).
    """

    subdir: str
    seed: int
    num_images: int
    masks: bool = False


#: The synthetic splits FAD's configs use, by dataset name.
SYNTHETIC_SPLITS = {
    "fad_synthetic_train": SyntheticSplit(subdir="train", seed=0, num_images=256),
    "fad_synthetic_arch": SyntheticSplit(subdir="arch", seed=1, num_images=64),
    "fad_synthetic_val": SyntheticSplit(subdir="val", seed=2, num_images=64),
    # The same images with instance masks, for Mask R-CNN (their own directories, so that the
    # splits without masks stay as they were generated).
    "fad_synthetic_mask_train": SyntheticSplit(
        subdir="mask_train", seed=0, num_images=256, masks=True
    ),
    "fad_synthetic_mask_arch": SyntheticSplit(
        subdir="mask_arch", seed=1, num_images=64, masks=True
    ),
    "fad_synthetic_mask_val": SyntheticSplit(subdir="mask_val", seed=2, num_images=64, masks=True),
}


def synthetic_root() -> str:
    """The directory of the synthetic splits, read from the environment now.

    Returns:
        ``$FAD_SYNTHETIC_ROOT`` if set, else ``$DETECTRON2_DATASETS/fad_synthetic`` (with
        ``DETECTRON2_DATASETS`` defaulting to ``datasets``), as an absolute path.
    """
    root = os.environ.get("FAD_SYNTHETIC_ROOT")
    if not root:
        root = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "fad_synthetic")
    # Absolute, so that the registered paths survive a change of directory.
    return os.path.abspath(os.path.expanduser(root))


def register_synthetic_datasets(root: Optional[str] = None) -> None:
    """Registers the synthetic splits under ``root`` (default :func:`synthetic_root`).

    Registering again moves them: a split registered before is replaced.
    """
    root = root or synthetic_root()
    for name, split in SYNTHETIC_SPLITS.items():
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        split_dir = os.path.join(root, split.subdir)
        register_coco_instances(
            name,
            {"thing_classes": list(SYNTHETIC_CLASSES)},
            os.path.join(split_dir, ANNOTATIONS_FILE),
            os.path.join(split_dir, IMAGES_DIR),
        )


def prepare_datasets(names: Sequence[str]) -> None:
    """Generates the synthetic splits among ``names`` that are not on disk yet.

    Call it once, in the main process, before workers start (``search_net.py`` and
    ``train_net.py`` do).
    """
    for name in dict.fromkeys(names):
        if name in SYNTHETIC_SPLITS:
            split = SYNTHETIC_SPLITS[name]
            generate_synthetic_coco(
                output_dir=os.path.dirname(MetadataCatalog.get(name).json_file),
                num_images=split.num_images,
                seed=split.seed,
                masks=split.masks,
            )


def register_coco_dataset(*, name: str, json_file: str, image_root: str) -> None:
    """Registers a COCO-format detection dataset, as ``--register-coco`` does.

    Nothing is read: :func:`check_dataset_files` and :func:`dataset_num_classes` check the files
    before a run. Registering the same files under the same name again does nothing.

    Args:
        name: dataset name to register.
        json_file: COCO instances JSON file.
        image_root: directory the JSON's ``file_name`` entries are relative to.

    Raises:
        ValueError: if ``name`` is already registered with other files.
    """
    json_file = os.path.abspath(os.path.expanduser(json_file))
    image_root = os.path.abspath(os.path.expanduser(image_root))
    if name in DatasetCatalog:
        registered = MetadataCatalog.get(name).as_dict()
        if (registered.get("json_file"), registered.get("image_root")) != (json_file, image_root):
            raise ValueError(
                f"Dataset {name!r} is already registered with other files "
                f"(json_file={registered.get('json_file')}, "
                f"image_root={registered.get('image_root')})"
            )
        return
    register_coco_instances(name, {}, json_file, image_root)


def _required_paths(name: str) -> list:
    """(path, test) pairs of the files and directories a registered dataset reads."""
    if name not in DatasetCatalog:
        raise KeyError(f"Dataset {name!r} is not registered")
    meta = MetadataCatalog.get(name).as_dict()
    if "json_file" in meta:
        required = [(meta["json_file"], os.path.isfile)]
        if "image_root" in meta:
            required.append((meta["image_root"], os.path.isdir))
        return required
    if "dirname" in meta:
        dirname = meta["dirname"]
        return [
            (os.path.join(dirname, "Annotations"), os.path.isdir),
            (os.path.join(dirname, "JPEGImages"), os.path.isdir),
            (os.path.join(dirname, "ImageSets", "Main", f"{meta['split']}.txt"), os.path.isfile),
        ]
    return []  # a layout this check does not know: the loader reports its own errors


def check_dataset_files(names: Sequence[str]) -> None:
    """Checks that the files of each dataset exist, so a run fails before training starts.

    COCO-style datasets (metadata with ``json_file``) need the JSON file and ``image_root``;
    PASCAL VOC datasets (metadata with ``dirname``) need ``Annotations``, ``JPEGImages`` and
    ``ImageSets/Main/<split>.txt``.

    Args:
        names: dataset names.

    Raises:
        KeyError: if a name is not registered.
        FileNotFoundError: naming every dataset with missing files and the missing paths.
    """
    problems = []
    for name in dict.fromkeys(names):
        for path, exists in _required_paths(name):
            # Remote paths (e.g. manifold://) cannot be checked locally. The messages give
            # absolute paths: detectron2's builtin datasets use paths relative to the working
            # directory.
            if "://" not in str(path) and not exists(path):
                problems.append(f"dataset {name!r} needs {os.path.abspath(path)}")
    if problems:
        raise FileNotFoundError(f"Missing dataset files: {'; '.join(problems)}. {_FIX_HINT}")


def _coco_categories(name: str, json_file: str) -> list:
    """The categories of a COCO JSON file, which must also list images."""
    try:
        with open(json_file, encoding="utf-8") as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"Dataset {name!r}: {json_file} is not valid JSON ({err})") from err
    categories = coco.get("categories") if isinstance(coco, dict) else None
    if not isinstance(categories, list) or not categories:
        raise ValueError(
            f"Dataset {name!r}: {json_file} is not a COCO-style annotation file "
            "(it needs a non-empty 'categories' list)"
        )
    if not all(isinstance(c, dict) and "id" in c and "name" in c for c in categories):
        raise ValueError(f"Dataset {name!r}: every category in {json_file} needs 'id' and 'name'")
    if not coco.get("images"):
        # Else detectron2 would stop every worker with "Dataset ... is empty!", after the
        # model was built.
        raise ValueError(f"Dataset {name!r}: {json_file} has no images")
    return categories


def dataset_num_classes(name: str) -> int:
    """The number of classes of a registered dataset, without loading it.

    From the metadata's ``thing_classes`` where the registration set them (detectron2's builtin
    datasets, the synthetic splits), else from the categories of its COCO JSON file, which is
    checked on the way (valid JSON, categories with ids and names, images).

    Raises:
        KeyError: if the dataset is not registered.
        ValueError: if its classes cannot be told, or its JSON file is not usable.
    """
    if name not in DatasetCatalog:
        raise KeyError(f"Dataset {name!r} is not registered")
    meta = MetadataCatalog.get(name).as_dict()
    if "thing_classes" in meta:
        return len(meta["thing_classes"])
    if "json_file" in meta:
        return len(_coco_categories(name, meta["json_file"]))
    raise ValueError(f"Dataset {name!r} has no thing_classes in its metadata")


def _sources(name: str) -> set:
    """What a dataset reads, as comparable keys: its JSON file, or its VOC directory and image
    sets (``trainval`` is ``train`` plus ``val``)."""
    meta = MetadataCatalog.get(name).as_dict() if name in DatasetCatalog else {}
    if "json_file" in meta:
        return {("json", os.path.realpath(meta["json_file"]))}
    if "dirname" in meta:
        splits = {"trainval": ("train", "val")}.get(meta["split"], (meta["split"],))
        return {("voc", os.path.realpath(meta["dirname"]), split) for split in splits}
    return {("name", name)}


def _load_coco(name: str) -> Optional[dict]:
    """The COCO dict of a dataset registered from a JSON file; ``None`` for another layout."""
    meta = MetadataCatalog.get(name).as_dict() if name in DatasetCatalog else {}
    if "json_file" not in meta:
        return None
    with open(meta["json_file"], encoding="utf-8") as f:
        return json.load(f)


def _image_files(name: str, coco: Optional[dict]) -> set:
    root = MetadataCatalog.get(name).get("image_root", "")
    images = coco.get("images", []) if coco else []
    return {os.path.realpath(os.path.join(root, image["file_name"])) for image in images}


def check_disjoint_datasets(first: Sequence[str], second: Sequence[str]) -> None:
    """Checks that two lists of datasets share no data, e.g. the search's weight and alpha splits.

    Datasets share data when they have the same name, the same JSON file, the same VOC
    directory with overlapping image sets (``voc_2012_trainval`` holds ``voc_2012_val``), or
    JSON files that list the same image file.

    Raises:
        ValueError: naming the first pair of datasets that share data.
    """
    for a in first:
        for b in second:
            if a == b or _sources(a) & _sources(b):
                same = "" if a == b else " data"
                raise ValueError(f"{a!r} and {b!r} are the same{same}")
            shared = _image_files(a, _load_coco(a)) & _image_files(b, _load_coco(b))
            if shared:
                raise ValueError(
                    f"{a!r} and {b!r} share {len(shared)} images (e.g. {min(shared)}): split "
                    "the annotations by image, e.g. with python -m fad.data.coco_split"
                )


def check_masks(names: Sequence[str]) -> None:
    """Checks that every annotation of the datasets has a ``segmentation``, for a mask head.

    Datasets registered from a COCO JSON file are read; detectron2's builtin COCO datasets have
    masks, and a layout without masks (PASCAL VOC's boxes) is refused.

    Raises:
        ValueError: naming the first dataset without masks.
    """
    for name in dict.fromkeys(names):
        if name.startswith("coco_") and name in DatasetCatalog:
            continue  # detectron2's builtin COCO: instances with masks
        coco = _load_coco(name)
        annotations = coco.get("annotations", []) if coco else None
        if annotations is None or not all("segmentation" in a for a in annotations):
            raise ValueError(
                f"dataset {name!r} has no instance masks ('segmentation' in every annotation), "
                "which a mask head trains on: use a dataset with masks (for the synthetic data, "
                "fad_synthetic_mask_*)"
            )


register_synthetic_datasets()
