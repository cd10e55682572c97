"""Synthetic COCO-format dataset: coloured shapes on textured backgrounds, boxes and masks.

The class of an object is its shape (see :data:`SYNTHETIC_CLASSES`); its colour is random, so a
detector has to learn shape rather than colour. Backgrounds are random noise, blobs, gradients or
stripes so that the task is not trivial. Everything is deterministic from a seed, and image ``i``
only depends on ``(seed, i)`` and the shape parameters, not on how many images are generated.

With ``masks=True`` each annotation also holds its ``segmentation``: the pixels of the object
that are visible, as COCO run-length encoding (RLE). A shape that another hides in part is no
polygon any more (it can even have a hole), so the exact form is the mask itself; detectron2
reads it with ``instance_mask_format="bitmask"``.

This module is pure (numpy + Pillow; pycocotools for masks): it must stay importable without
detectron2 or torch.

Command line::

    python -m fad.data.synthetic --output-dir DIR --num-images N --seed S [--image-size H W] \
        [--masks]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import tempfile
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "ANNOTATIONS_FILE",
    "IMAGES_DIR",
    "SYNTHETIC_CLASSES",
    "SyntheticImage",
    "SyntheticObject",
    "generate_synthetic_coco",
    "main",
    "render_synthetic_image",
]

SYNTHETIC_CLASSES = ("circle", "square", "triangle")
# Recorded in the JSON with the parameters: a dataset drawn by another version of the renderer
# is not returned as if it were this one's.
_VERSION = 2
ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"

# Objects drawn later may hide at most this fraction of an object's area: heavily occluded
# objects would make the boxes ambiguous for a dataset this small.
_MAX_OCCLUSION = 0.4
_PLACEMENT_TRIES = 20
# Minimum mean absolute RGB difference between an object and the background under it, so that
# objects are visible (a random colour on a random texture is sometimes invisible).
_MIN_CONTRAST = 40.0
_COLOUR_TRIES = 10


@dataclasses.dataclass(frozen=True)
class SyntheticObject:
    """One shape in a synthetic image.

    Attributes:
        category_id: COCO category id, 1-based index into :data:`SYNTHETIC_CLASSES`.
        colour: the RGB fill colour.
        mask: boolean (H, W) mask of the pixels of the object that are visible (not occluded).
        bbox: tight COCO box ``[x, y, w, h]`` of ``mask``, in pixels.
        area: number of visible pixels.
    """

    category_id: int
    colour: tuple[int, int, int]
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area: int


@dataclasses.dataclass(frozen=True)
class SyntheticImage:
    """A rendered synthetic image.

    Attributes:
        image: uint8 RGB array of shape (H, W, 3).
        objects: the visible objects, in drawing order.
    """

    image: np.ndarray
    objects: list[SyntheticObject]


def _is_empty_image(index: int, empty_fraction: float) -> bool:
    # Spreads exactly floor(n * empty_fraction) empty images evenly over the first n indices, so the
    # count does not depend on luck and image i does not depend on how many images there are.
    return math.floor((index + 1) * empty_fraction) > math.floor(index * empty_fraction)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(0, 4))
    if kind == 0:  # coloured noise around a base colour
        base = _random_colour(rng)
        background = base + rng.normal(0.0, rng.uniform(10.0, 40.0), size=(height, width, 3))
    elif kind == 1:  # low-frequency blobs: coarse noise upsampled smoothly
        coarse = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3))
        blobs = Image.fromarray(coarse.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        background = np.asarray(blobs, dtype=np.float32)
    else:
        angle = rng.uniform(0.0, math.pi)
        along = xx * math.cos(angle) + yy * math.sin(angle)
        if kind == 2:  # linear gradient between two colours
            t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        else:  # stripes of random period
            period = rng.uniform(6.0, 24.0)
            t = 0.5 + 0.5 * np.sin(2.0 * math.pi * along / period)
        first, second = _random_colour(rng), _random_colour(rng)
        background = first * (1.0 - t[..., None]) + second * t[..., None]
    background = background + rng.normal(0.0, rng.uniform(2.0, 12.0), size=(height, width, 3))
    return np.clip(background, 0.0, 255.0)


def _shape_outline(
    rng: np.random.Generator, category_id: int, size: int
) -> tuple[Optional[np.ndarray], float]:
    """Returns (polygon vertices relative to the centre or None for a circle, half extent)."""
    name = SYNTHETIC_CLASSES[category_id - 1]
    if name == "circle":
        return None, size / 2.0
    if name == "square":
        radius, corners = size / math.sqrt(2.0), 4
    else:  # equilateral triangle with side `size`
        radius, corners = size / math.sqrt(3.0), 3
    rotation = rng.uniform(0.0, 2.0 * math.pi)
    angles = rotation + 2.0 * math.pi * np.arange(corners) / corners
    vertices = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return vertices, float(np.abs(vertices).max())


def _shape_mask(
    vertices: Optional[np.ndarray],
    half_extent: float,
    centre: tuple[float, float],
    height: int,
    width: int,
) -> np.ndarray:
    """The pixels a shape covers, drawn with ``PIL.ImageDraw`` as a boolean (H, W) mask."""
    mask = Image.new("1", (width, height))
    draw = ImageDraw.Draw(mask)
    # The shapes' geometry puts pixel (x, y)'s centre at (x + 0.5, y + 0.5); PIL at (x, y).
    cx, cy = centre[0] - 0.5, centre[1] - 0.5
    if vertices is None:
        draw.ellipse(
            [cx - half_extent, cy - half_extent, cx + half_extent, cy + half_extent], fill=1
        )
    else:
        draw.polygon([(cx + vx, cy + vy) for vx, vy in vertices], fill=1)
    return np.asarray(mask, dtype=bool)


def render_synthetic_image(
    *,
    seed: int,
    index: int,
    image_size: tuple[int, int] = (128, 128),
    max_objects: int = 4,
    empty_fraction: float = 0.1,
    min_size: int = 16,
    max_size: int = 56,
) -> SyntheticImage:
    """Renders image ``index`` of the synthetic dataset with the given seed.

    Args:
        seed: dataset seed.
        index: image index; together with ``seed`` it fully determines the image.
        image_size: (height, width) in pixels.
        max_objects: maximum number of objects in a non-empty image (at least one).
        empty_fraction: fraction of the images that have no objects at all.
        min_size: minimum shape size in pixels (circle diameter, square or triangle side).
        max_size: maximum shape size in pixels.

    Returns:
        The image and its visible objects with tight boxes.
    """
    height, width = image_size
    rng = np.random.default_rng([seed, index])
    image = _render_background(rng, height, width)
    if _is_empty_image(index, empty_fraction):
        return SyntheticImage(image=image.astype(np.uint8), objects=[])

    # labels[y, x] is 1 + the index in `placed` of the object visible at that pixel, 0 if none.
    labels = np.zeros((height, width), dtype=np.int32)
    placed: list[tuple[int, tuple[int, int, int]]] = []
    full_areas: list[int] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        category_id = int(rng.integers(1, len(SYNTHETIC_CLASSES) + 1))
        vertices, half = _shape_outline(rng, category_id, int(rng.integers(min_size, max_size + 1)))
        visible = np.bincount(labels.ravel(), minlength=len(placed) + 1)[1:]
        for _ in range(_PLACEMENT_TRIES):
            centre = (rng.uniform(half, width - half), rng.uniform(half, height - half))
            mask = _shape_mask(vertices, half, centre, height, width)
            hidden = np.bincount(labels[mask], minlength=len(placed) + 1)[1:]
            # Bounded against the full area, so several later objects cannot hide one together.
            if np.all(visible - hidden >= (1.0 - _MAX_OCCLUSION) * np.asarray(full_areas)):
                break
        else:
            continue  # no placement leaves the earlier objects visible enough: skip this one
        under = image[mask].mean(axis=0)
        for _ in range(_COLOUR_TRIES):
            colour = rng.integers(0, 256, size=3)
            if np.abs(colour - under).mean() >= _MIN_CONTRAST:
                break
        labels[mask] = len(placed) + 1
        placed.append((category_id, (int(colour[0]), int(colour[1]), int(colour[2]))))
        full_areas.append(int(mask.sum()))

    objects = []
    for label, (category_id, colour) in enumerate(placed, start=1):
        visible_mask = labels == label
        image[visible_mask] = colour
        ys, xs = np.nonzero(visible_mask)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)
        objects.append(
            SyntheticObject(
                category_id=category_id,
                colour=colour,
                mask=visible_mask,
                bbox=bbox,
                area=int(visible_mask.sum()),
            )
        )
    return SyntheticImage(image=image.astype(np.uint8), objects=objects)


def _validate(params: dict[str, Any]) -> None:
    height, width = params["image_size"]
    if params["num_images"] < 1:
        raise ValueError(f"num_images must be at least 1, got {params['num_images']}")
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {params['image_size']}")
    if params["max_objects"] < 1:
        raise ValueError(f"max_objects must be at least 1, got {params['max_objects']}")
    if not 0.0 <= params["empty_fraction"] <= 1.0:
        raise ValueError(f"empty_fraction must be in [0, 1], got {params['empty_fraction']}")
    # From size 4 on, every shape covers at least one pixel centre wherever it is placed.
    if not 4 <= params["min_size"] <= params["max_size"]:
        raise ValueError(
            f"need 4 <= min_size <= max_size, got {params['min_size']} and {params['max_size']}"
        )
    # A rotated square of side s spans up to s * sqrt(2) pixels.
    if params["max_size"] * math.sqrt(2.0) > min(height, width):
        raise ValueError(
            f"max_size {params['max_size']} is too large for image_size {params['image_size']}: "
            "a rotated square must fit, so max_size * sqrt(2) <= min(height, width)"
        )


def _coco_dict(params: dict[str, Any], images_dir: str) -> dict[str, Any]:
    """Renders every image into ``images_dir`` and returns the COCO annotation dict."""
    height, width = params["image_size"]
    skip = ("version", "num_images", "seed", "masks")
    shape_params = {k: v for k, v in params.items() if k not in skip}
    images, annotations = [], []
    for index in range(params["num_images"]):
        rendered = render_synthetic_image(seed=params["seed"], index=index, **shape_params)
        file_name = f"{index:05d}.png"
        # PNG keeps the pixels exact: JPEG artefacts would blur the edges the boxes are tight to.
        Image.fromarray(rendered.image).save(os.path.join(images_dir, file_name), format="PNG")
        # COCO ids start at 1: pycocotools' COCOeval uses id 0 to mean "unmatched".
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for obj in rendered.objects:
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": obj.category_id,
                "bbox": list(obj.bbox),
                "area": obj.area,
                "iscrowd": 0,
            }
            if params.get("masks"):
                annotation["segmentation"] = _rle(obj.mask)
            annotations.append(annotation)
    categories = [
        {"id": i, "name": name, "supercategory": "shape"}
        for i, name in enumerate(SYNTHETIC_CLASSES, start=1)
    ]
    return {
        "info": {"description": "FAD synthetic shapes", "generator": params},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _rle(mask: np.ndarray) -> dict[str, Any]:
    """A boolean (H, W) mask as COCO's compressed RLE, ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_util  # only datasets with masks need it

    rle = mask_util.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _check_existing(json_path: str, params: dict[str, Any]) -> None:
    # Returning a dataset generated with other parameters would silently train on the wrong data.
    with open(json_path, encoding="utf-8") as f:
        existing = json.load(f).get("info", {}).get("generator")
    # Round-trip through JSON so tuples compare equal to the lists they were saved as.
    if existing != json.loads(json.dumps(params)):
        raise ValueError(
            f"{json_path} exists but was not generated with {params} (found {existing}); "
            "delete its directory to regenerate it"
        )


def generate_synthetic_coco(
    *,
    output_dir: str,
    num_images: int,
    image_size: tuple[int, int] = (128, 128),
    seed: int,
    max_objects: int = 4,
    empty_fraction: float = 0.1,
    min_size: int = 16,
    max_size: int = 56,
    masks: bool = False,
) -> str:
    """Writes a synthetic COCO dataset, unless it is already there.

    Produces ``output_dir/images/NNNNN.png`` and ``output_dir/annotations.json``. The dataset is
    rendered into a temporary sibling directory that is renamed into place at the end, so an
    interrupted run never leaves a dataset that looks complete. If ``annotations.json`` already
    exists it is returned as is, after checking that it was generated with the same parameters.

    Args:
        output_dir: dataset directory to create.
        num_images: number of images.
        image_size: (height, width) in pixels.
        seed: seed; the same arguments give byte-identical JSON and identical pixels.
        max_objects: maximum number of objects in a non-empty image.
        empty_fraction: fraction of the images without any object (they are listed in
            ``images`` and have no annotations).
        min_size: minimum shape size in pixels.
        max_size: maximum shape size in pixels; ``max_size * sqrt(2)`` must fit in the image.
        masks: also write each object's visible pixels as its ``segmentation`` (RLE).

    Returns:
        The path of ``annotations.json``.

    Raises:
        ValueError: on invalid parameters, or when an existing dataset in ``output_dir`` was
            generated with different parameters.
        FileExistsError: when ``output_dir`` exists, is not empty and has no annotations.json.
    """
    params = {
        "version": _VERSION,
        "seed": seed,
        "num_images": num_images,
        "image_size": [int(image_size[0]), int(image_size[1])],
        "max_objects": max_objects,
        "empty_fraction": empty_fraction,
        "min_size": min_size,
        "max_size": max_size,
    }
    if masks:  # only then, so that the parameters of datasets without masks stay as they were
        params["masks"] = True
    _validate(params)
    json_path = os.path.join(output_dir, ANNOTATIONS_FILE)
    if os.path.isfile(json_path):
        _check_existing(json_path, params)
        return json_path
    target = os.path.abspath(output_dir)
    if os.path.isdir(target) and os.listdir(target):
        raise FileExistsError(
            f"cannot create the synthetic dataset at {target}: the directory exists without "
            f"{ANNOTATIONS_FILE}; remove it and retry"
        )

    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    try:
        # mkdtemp makes the directory private (0700); the dataset is meant to be shared.
        os.chmod(tmp_dir, 0o777 & ~_umask())
        os.mkdir(os.path.join(tmp_dir, IMAGES_DIR))
        coco = _coco_dict(params, os.path.join(tmp_dir, IMAGES_DIR))
        with open(os.path.join(tmp_dir, ANNOTATIONS_FILE), "w", encoding="utf-8") as f:
            json.dump(coco, f)
        os.replace(tmp_dir, target)  # replaces an empty directory, never a full one
    finally:
        if os.path.isdir(tmp_dir):
            shutil.rmtree(tmp_dir)
    return json_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: generates a dataset and prints the path of its JSON.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fad.data.synthetic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output-dir", required=True, help="dataset directory to create")
    parser.add_argument("--num-images", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--image-size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    parser.add_argument("--max-objects", type=int, default=4)
    parser.add_argument("--empty-fraction", type=float, default=0.1)
    parser.add_argument("--masks", action="store_true", help="also write instance masks (RLE)")
    args = parser.parse_args(argv)
    json_path = generate_synthetic_coco(
        output_dir=args.output_dir,
        num_images=args.num_images,
        image_size=tuple(args.image_size),
        seed=args.seed,
        max_objects=args.max_objects,
        empty_fraction=args.empty_fraction,
        masks=args.masks,
    )
    print(json_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
