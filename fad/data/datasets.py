"""Dataset registration for FAD on detectron2.

Importing this module (it is imported by :mod:`fad.data` when detectron2 is installed) registers
the synthetic splits, without touching the disk:

* ``fad_synthetic_train``: seed 0, 256 images, for the network-weight steps / training;
* ``fad_synthetic_arch``: seed 1, 64 images, for the architecture-weight (alpha) steps of the
  search;
* ``fad_synthetic_val``: seed 2, 64 images, for evaluation.

They live under ``$FAD_SYNTHETIC_ROOT`` or else ``$DETECTRON2_DATASETS/fad_synthetic`` (default
``./datasets/fad_synthetic``); the root is read the first time a split is needed, and a split is
generated the first time it is needed.

Evaluator and ``json_file``: detectron2's ``COCOEvaluator`` opens ``metadata.json_file`` in its
constructor, which may run before the dataset was ever loaded. The metadata of a synthetic split
is therefore a lazy :class:`~detectron2.data.Metadata`: reading its ``json_file`` or
``image_root`` calls :func:`ensure_synthetic_dataset`, which fixes the root, generates the split
if it is missing and stores both paths as ordinary metadata. So ``COCOEvaluator`` works at any
time, and the paths it reads are the ones the loader uses. Scripts may also call
:func:`ensure_synthetic_dataset` up front (e.g. on the main process before starting workers).

PASCAL VOC 2012 and COCO 2017 (``voc_2012_train``, ``voc_2012_val``, ``coco_2017_train``,
``coco_2017_val``, ...) are registered by detectron2 itself when ``detectron2.data`` is imported,
under ``$DETECTRON2_DATASETS``; :func:`check_dataset_files` verifies their files before training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any, Optional, Sequence

# Importing detectron2.data registers detectron2's builtin datasets (COCO, VOC, ...).
from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data.datasets import load_coco_json, register_coco_instances

from .synthetic import IMAGES_DIR, SYNTHETIC_CLASSES, generate_synthetic_coco

__all__ = [
    "SYNTHETIC_SPLITS",
    "SyntheticSplit",
    "add_dataset_arguments",
    "check_dataset_files",
    "check_disjoint_datasets",
    "dataset_num_classes",
    "ensure_synthetic_dataset",
    "register_coco_dataset",
    "register_datasets_from_args",
    "register_synthetic_dataset",
    "synthetic_root",
]

_FIX_HINT = (
    "Set DETECTRON2_DATASETS to the directory that holds the datasets (see detectron2's "
    "datasets/README.md for the expected layout), or register the dataset with "
    "--register-coco NAME JSON_FILE IMAGE_ROOT."
)


@dataclasses.dataclass(frozen=True)
class SyntheticSplit:
    """How a registered synthetic split is generated.

    Attributes:
        subdir: directory of the split under :func:`synthetic_root`.
        seed: generator seed.
        num_images: number of images.
    """

    subdir: str
    seed: int
    num_images: int


# Registered synthetic splits by dataset name; filled by register_synthetic_dataset.
SYNTHETIC_SPLITS: dict[str, SyntheticSplit] = {}

# The paths that _SyntheticMetadata resolves on first access.
_LAZY_PATH_KEYS = ("json_file", "image_root")


class _SyntheticMetadata(Metadata):
    """Metadata whose ``json_file`` and ``image_root`` are resolved (and generated) on first use."""

    def __getattr__(self, key: str) -> Any:
        # Only called for attributes not set yet: after the first resolution the paths are plain
        # attributes and this hook is out of the way.
        if key in _LAZY_PATH_KEYS:
            ensure_synthetic_dataset(self.name)
            return self.__dict__[key]
        return super().__getattr__(key)


def synthetic_root() -> str:
    """Returns the directory holding the synthetic splits, read from the environment now.

    Returns:
        ``$FAD_SYNTHETIC_ROOT`` if set, else ``$DETECTRON2_DATASETS/fad_synthetic`` (with
        ``DETECTRON2_DATASETS`` defaulting to ``datasets``), as an absolute path.
    """
    root = os.environ.get("FAD_SYNTHETIC_ROOT")
    if not root:
        root = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "fad_synthetic")
    # Absolute, so that the paths stored in the metadata survive a change of directory.
    return os.path.abspath(os.path.expanduser(root))


def register_synthetic_dataset(
    *, name: str, seed: int, num_images: int, subdir: Optional[str] = None
) -> None:
    """Registers a synthetic split lazily: nothing is read or written until it is used.

    Args:
        name: dataset name.
        seed: generator seed.
        num_images: number of images.
        subdir: directory of the split under :func:`synthetic_root`; defaults to ``name``.

    Raises:
        ValueError: if ``name`` is already registered as something else.
    """
    split = SyntheticSplit(subdir=subdir or name, seed=seed, num_images=num_images)
    if name in DatasetCatalog:
        if SYNTHETIC_SPLITS.get(name) == split:
            return
        raise ValueError(f"Dataset {name!r} is already registered as a different dataset")
    SYNTHETIC_SPLITS[name] = split
    DatasetCatalog.register(name, lambda: _load_synthetic(name))
    # Installed before anything creates a plain Metadata for this name, so the paths stay lazy.
    MetadataCatalog[name] = _SyntheticMetadata(name=name).set(
        thing_classes=list(SYNTHETIC_CLASSES),
        thing_dataset_id_to_contiguous_id={i + 1: i for i in range(len(SYNTHETIC_CLASSES))},
        evaluator_type="coco",
    )


def ensure_synthetic_dataset(name: str) -> str:
    """Generates a registered synthetic split if it is missing and fixes its paths.

    The first call for a split reads :func:`synthetic_root` and records ``json_file`` and
    ``image_root`` in its metadata; later calls reuse those paths, so the loader, the evaluator
    and the scripts always agree on where the split is.

    Args:
        name: name of a split registered with :func:`register_synthetic_dataset`.

    Returns:
        The path of the split's COCO JSON file.

    Raises:
        KeyError: if ``name`` is not a registered synthetic split.
    """
    if name not in SYNTHETIC_SPLITS:
        raise KeyError(f"{name!r} is not a registered synthetic dataset")
    split = SYNTHETIC_SPLITS[name]
    meta = MetadataCatalog.get(name)
    # as_dict() reads the stored attributes without triggering the lazy lookup.
    known_json = meta.as_dict().get("json_file")
    split_dir = (
        os.path.dirname(known_json) if known_json else os.path.join(synthetic_root(), split.subdir)
    )
    json_file = generate_synthetic_coco(
        output_dir=split_dir, num_images=split.num_images, seed=split.seed
    )
    if not known_json:
        # Stored directly: Metadata.__setattr__ first reads the current value, which would
        # re-enter the lazy lookup of _SyntheticMetadata.
        vars(meta).update(json_file=json_file, image_root=os.path.join(split_dir, IMAGES_DIR))
    return json_file


def _load_synthetic(name: str) -> list[dict]:
    json_file = ensure_synthetic_dataset(name)
    return load_coco_json(json_file, MetadataCatalog.get(name).image_root, name)


def _read_coco_categories(*, name: str, json_file: str) -> list[dict]:
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


def register_coco_dataset(*, name: str, json_file: str, image_root: str) -> list[str]:
    """Validates and registers a COCO-format detection dataset.

    Args:
        name: dataset name to register.
        json_file: COCO instances JSON file.
        image_root: directory the JSON's ``file_name`` entries are relative to.

    Returns:
        The class names, ordered by category id as detectron2's ``load_coco_json`` orders them.

    Raises:
        FileNotFoundError: if ``json_file`` or ``image_root`` does not exist.
        ValueError: if ``json_file`` is not COCO-style JSON with categories and images, or
            ``name`` is already registered with other files.
    """
    json_file = os.path.abspath(os.path.expanduser(json_file))
    image_root = os.path.abspath(os.path.expanduser(image_root))
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"Dataset {name!r}: annotation file {json_file} does not exist")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"Dataset {name!r}: image directory {image_root} does not exist")
    categories = _read_coco_categories(name=name, json_file=json_file)
    categories = sorted(categories, key=lambda c: c["id"])
    class_names = [c["name"] for c in categories]

    if name in DatasetCatalog:
        registered = MetadataCatalog.get(name).as_dict()
        if (registered.get("json_file"), registered.get("image_root")) != (json_file, image_root):
            raise ValueError(
                f"Dataset {name!r} is already registered with other files "
                f"(json_file={registered.get('json_file')}, "
                f"image_root={registered.get('image_root')})"
            )
        return class_names
    register_coco_instances(
        name,
        {
            "thing_classes": class_names,
            # The same mapping load_coco_json derives, available before the dataset is loaded.
            "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(categories)},
        },
        json_file,
        image_root,
    )
    return class_names


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the repeatable ``--register-coco NAME JSON_FILE IMAGE_ROOT`` option to a parser.

    Args:
        parser: the parser to extend.
    """
    parser.add_argument(
        "--register-coco",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "JSON_FILE", "IMAGE_ROOT"),
        help="register a COCO-format dataset under NAME before training (repeatable)",
    )


def register_datasets_from_args(args: argparse.Namespace) -> dict[str, list[str]]:
    """Registers the datasets given with ``--register-coco``.

    Args:
        args: parsed arguments of a parser extended by :func:`add_dataset_arguments`.

    Returns:
        The class names of each registered dataset, by dataset name.
    """
    return {
        name: register_coco_dataset(name=name, json_file=json_file, image_root=image_root)
        for name, json_file, image_root in args.register_coco
    }


def _missing_paths(name: str) -> list[str]:
    if name not in DatasetCatalog:
        raise KeyError(f"Dataset {name!r} is not registered")
    if name in SYNTHETIC_SPLITS:
        return []  # generated on demand
    meta = MetadataCatalog.get(name).as_dict()
    if "json_file" in meta:
        required = [(meta["json_file"], os.path.isfile)]
        if "image_root" in meta:
            required.append((meta["image_root"], os.path.isdir))
    elif "dirname" in meta:
        dirname = meta["dirname"]
        required = [
            (os.path.join(dirname, "Annotations"), os.path.isdir),
            (os.path.join(dirname, "JPEGImages"), os.path.isdir),
            (os.path.join(dirname, "ImageSets", "Main", f"{meta['split']}.txt"), os.path.isfile),
        ]
    else:
        return []  # a layout this check does not know: the loader reports its own errors
    # Remote paths (e.g. manifold://) cannot be checked locally. The messages give absolute paths
    # because detectron2's builtin datasets use paths relative to the working directory.
    return [
        os.path.abspath(path)
        for path, exists in required
        if "://" not in str(path) and not exists(path)
    ]


def check_dataset_files(names: Sequence[str]) -> None:
    """Checks that the files of each dataset exist, so a run fails before training starts.

    COCO-style datasets (metadata with ``json_file``) need the JSON file and ``image_root``;
    PASCAL VOC datasets (metadata with ``dirname``) need ``Annotations``, ``JPEGImages`` and
    ``ImageSets/Main/<split>.txt``; synthetic splits are generated on demand.

    Args:
        names: dataset names, e.g. ``cfg.DATASETS.TRAIN + cfg.DATASETS.TEST``.

    Raises:
        KeyError: if a name is not registered.
        FileNotFoundError: naming every dataset with missing files and the missing paths.
    """
    problems = []
    for name in dict.fromkeys(names):
        problems += [f"dataset {name!r} needs {path}" for path in _missing_paths(name)]
    if problems:
        listing = "\n  ".join(problems)
        raise FileNotFoundError(f"Missing dataset files:\n  {listing}\n{_FIX_HINT}")


def _sources(name: str) -> set:
    """What a dataset reads, as comparable keys: its JSON file, its synthetic directory, or
    its VOC directory and image sets (``trainval`` is ``train`` plus ``val``)."""
    if name in SYNTHETIC_SPLITS:
        return {("synthetic", SYNTHETIC_SPLITS[name].subdir)}
    meta = MetadataCatalog.get(name).as_dict() if name in DatasetCatalog else {}
    if "json_file" in meta:
        return {("json", os.path.realpath(meta["json_file"]))}
    if "dirname" in meta:
        splits = {"trainval": ("train", "val")}.get(meta["split"], (meta["split"],))
        return {("voc", os.path.realpath(meta["dirname"]), split) for split in splits}
    return {("name", name)}


def check_disjoint_datasets(first: Sequence[str], second: Sequence[str]) -> None:
    """Checks that two lists of datasets share no data, e.g. the search's weight and alpha splits.

    Datasets share data when they have the same name, the same JSON file or synthetic
    directory, or the same VOC directory with overlapping image sets (``voc_2012_trainval``
    holds ``voc_2012_val``).

    Raises:
        ValueError: naming the first pair of datasets that share data.
    """
    for a in first:
        for b in second:
            if a == b or _sources(a) & _sources(b):
                same = "" if a == b else " data"
                raise ValueError(f"{a!r} and {b!r} are the same{same}")


def dataset_num_classes(name: str) -> int:
    """Returns the number of classes of a registered dataset, without loading it.

    Args:
        name: dataset name.

    Returns:
        ``len(thing_classes)`` from the dataset's metadata.

    Raises:
        KeyError: if the dataset is not registered.
        ValueError: if its metadata has no ``thing_classes``.
    """
    if name not in DatasetCatalog:
        raise KeyError(f"Dataset {name!r} is not registered")
    thing_classes = MetadataCatalog.get(name).as_dict().get("thing_classes")
    if thing_classes is None:
        raise ValueError(f"Dataset {name!r} has no thing_classes in its metadata")
    return len(thing_classes)


# The splits FAD's configs use; see the module docstring.
_DEFAULT_SYNTHETIC_SPLITS = {
    "fad_synthetic_train": SyntheticSplit(subdir="train", seed=0, num_images=256),
    "fad_synthetic_arch": SyntheticSplit(subdir="arch", seed=1, num_images=64),
    "fad_synthetic_val": SyntheticSplit(subdir="val", seed=2, num_images=64),
}


def _register_default_synthetic_splits() -> None:
    for name, split in _DEFAULT_SYNTHETIC_SPLITS.items():
        register_synthetic_dataset(
            name=name, seed=split.seed, num_images=split.num_images, subdir=split.subdir
        )


_register_default_synthetic_splits()
