"""Synthetic COCO-format dataset: coloured shapes on textured backgrounds, boxes and masks.

The class is the shape (:data:`SYNTHETIC_CLASSES`), the colour random; image ``i`` depends only
on ``(seed, i)`` and the shape parameters. With ``masks=True`` each annotation holds the visible
pixels as RLE ``segmentation`` (read with ``instance_mask_format="bitmask"``). Pure numpy + Pillow
(pycocotools for masks), importable without detectron2 or torch. Command line::

    python -m fad.data.synthetic --output-dir D --num-images N --seed S [--image-size H W] [--masks]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import uuid
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SYNTHETIC_CLASSES", "generate_synthetic_coco", "main", "render_synthetic_image"]

SYNTHETIC_CLASSES = ("circle", "square", "triangle")
# Recorded in the JSON: a dataset of another renderer version is not returned as this one's.
_VERSION = 2
ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
# Later objects may hide at most this fraction of an object: heavy occlusion makes boxes ambiguous.
_MAX_OCCLUSION = 0.4
_PLACEMENT_TRIES = 20
# Minimum mean absolute RGB difference between an object and the background under it.
_MIN_CONTRAST = 40.0
_COLOUR_TRIES = 10


@dataclasses.dataclass(frozen=True)
class SyntheticObject:
    """One visible shape: ``category_id`` (1-based into :data:`SYNTHETIC_CLASSES`), RGB ``colour``,
    boolean (H, W) ``mask`` and ``area`` of its visible pixels, tight COCO ``bbox`` (x, y, w, h)."""

    category_id: int
    colour: tuple[int, int, int]
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area: int


@dataclasses.dataclass(frozen=True)
class SyntheticImage:
    """A rendered image: ``image`` uint8 RGB (H, W, 3), ``objects`` visible, in drawing order."""

    image: np.ndarray
    objects: list[SyntheticObject]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
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
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0.0, math.pi)
        along = xx * math.cos(angle) + yy * math.sin(angle)
        if kind == 2:  # linear gradient between two colours
            t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        else:  # stripes of random period
            t = 0.5 + 0.5 * np.sin(2.0 * math.pi * along / rng.uniform(6.0, 24.0))
        first, second = _random_colour(rng), _random_colour(rng)
        background = first * (1.0 - t[..., None]) + second * t[..., None]
    background = background + rng.normal(0.0, rng.uniform(2.0, 12.0), size=(height, width, 3))
    return np.clip(background, 0.0, 255.0)


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
        index: image index; with ``seed`` it fully determines the image.
        image_size: (height, width) in pixels.
        max_objects: maximum number of objects in a non-empty image (at least one).
        empty_fraction: fraction of the images without objects.
        min_size: minimum shape size in pixels (circle diameter, square or triangle side).
        max_size: maximum shape size in pixels; ``max_size * sqrt(2)`` must fit in the image.

    Returns:
        The image and its visible objects with tight boxes; ValueError for invalid parameters.
    """
    height, width = image_size
    for ok, problem in [
        (max_objects >= 1, f"max_objects must be at least 1, got {max_objects}"),
        (0.0 <= empty_fraction <= 1.0, f"empty_fraction must be in [0, 1], got {empty_fraction}"),
        # From size 4 on, every shape covers a pixel centre wherever it is placed.
        (4 <= min_size <= max_size, f"need 4 <= min_size <= max_size, got {min_size}, {max_size}"),
        (  # a rotated square of side s spans up to s * sqrt(2) pixels
            max_size * math.sqrt(2.0) <= min(height, width),
            f"max_size {max_size} is too large for image_size {image_size}: a rotated square "
            "must fit, so max_size * sqrt(2) <= min(height, width)",
        ),
    ]:
        if not ok:
            raise ValueError(problem)
    rng = np.random.default_rng([seed, index])
    image = _render_background(rng, height, width)
    # Exactly floor(n * empty_fraction) of the first n images are empty, spread evenly.
    if math.floor((index + 1) * empty_fraction) > math.floor(index * empty_fraction):
        return SyntheticImage(image=image.astype(np.uint8), objects=[])

    # labels[y, x] is 1 + the index in `placed` of the object visible at that pixel, 0 if none.
    labels = np.zeros((height, width), dtype=np.int32)
    placed: list[tuple[int, tuple[int, int, int]]] = []
    full_areas: list[int] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        category_id = int(rng.integers(1, len(SYNTHETIC_CLASSES) + 1))
        size, shape = int(rng.integers(min_size, max_size + 1)), SYNTHETIC_CLASSES[category_id - 1]
        vertices, half = None, size / 2.0  # a circle of diameter `size`
        if shape != "circle":  # a rotated square of side `size`, or equilateral triangle
            corners = 4 if shape == "square" else 3
            radius = size / math.sqrt(6 - corners)  # circumradius: side / sqrt(2) or / sqrt(3)
            angles = rng.uniform(0.0, 2.0 * math.pi) + 2.0 * math.pi * np.arange(corners) / corners
            vertices = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            half = float(np.abs(vertices).max())
        visible = np.bincount(labels.ravel(), minlength=len(placed) + 1)[1:]
        for _ in range(_PLACEMENT_TRIES):
            # Pixel (x, y)'s centre is at (x + 0.5, y + 0.5) here, at (x, y) for PIL.
            cx = rng.uniform(half, width - half) - 0.5
            cy = rng.uniform(half, height - half) - 0.5
            canvas = Image.new("1", (width, height))
            if vertices is None:
                ImageDraw.Draw(canvas).ellipse([cx - half, cy - half, cx + half, cy + half], fill=1)
            else:
                ImageDraw.Draw(canvas).polygon([(cx + x, cy + y) for x, y in vertices], fill=1)
            mask = np.asarray(canvas, dtype=bool)
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
        placed.append((category_id, tuple(int(c) for c in colour)))
        full_areas.append(int(mask.sum()))

    objects = []
    for label, (category_id, colour) in enumerate(placed, start=1):
        mask = labels == label
        image[mask] = colour
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)
        objects.append(SyntheticObject(category_id, colour, mask, bbox, int(mask.sum())))
    return SyntheticImage(image=image.astype(np.uint8), objects=objects)


_SHAPE_DEFAULTS = render_synthetic_image.__kwdefaults__  # its parameters after `index`


def generate_synthetic_coco(
    *, output_dir: str, num_images: int, seed: int, masks: bool = False, **shape: Any
) -> str:
    """Writes ``output_dir/images/NNNNN.png`` and ``output_dir/annotations.json``, unless there
    (an existing one is checked to have the same parameters). It is rendered into a temporary
    sibling renamed into place at the end: an interrupted run leaves nothing that looks complete.

    Args:
        output_dir: dataset directory to create.
        num_images: number of images.
        seed: seed; the same arguments give byte-identical JSON and identical pixels.
        masks: also write each object's visible pixels as its ``segmentation`` (RLE).
        shape: the keyword arguments of :func:`render_synthetic_image` after ``index``.

    Returns:
        The path of ``annotations.json``. ValueError for invalid parameters or another dataset
        there, FileExistsError for a full ``output_dir`` without annotations.json.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    shape = {**_SHAPE_DEFAULTS, **shape}  # every one, for the JSON
    height, width = shape["image_size"] = [int(side) for side in shape["image_size"]]
    params = {"version": _VERSION, "seed": seed, "num_images": num_images, **shape}
    if masks:  # only then, so that the parameters of datasets without masks stay as they were
        params["masks"] = True
        from pycocotools import mask as mask_util  # only datasets with masks need it
    json_path = os.path.join(output_dir, ANNOTATIONS_FILE)
    if os.path.isfile(json_path):
        # Returning a dataset of other parameters would silently train on the wrong data.
        with open(json_path, encoding="utf-8") as f:
            existing = json.load(f).get("info", {}).get("generator")
        if existing != params:
            raise ValueError(
                f"{json_path} exists but was not generated with {params} (found {existing}); "
                "delete its directory to regenerate it"
            )
        return json_path
    target = os.path.abspath(output_dir)
    if os.path.isdir(target) and os.listdir(target):
        raise FileExistsError(
            f"cannot create the synthetic dataset at {target}: the directory exists without "
            f"{ANNOTATIONS_FILE}; remove it and retry"
        )
    parent, base = os.path.split(target)
    tmp_dir = os.path.join(parent, f".{base}.tmp-{uuid.uuid4().hex[:12]}")
    images, annotations = [], []
    try:
        os.makedirs(os.path.join(tmp_dir, IMAGES_DIR))  # with the umask: the data is shared
        for index in range(num_images):
            rendered = render_synthetic_image(seed=seed, index=index, **shape)
            image_id, name = index + 1, f"{index:05d}.png"  # COCOeval takes id 0 for unmatched
            # PNG keeps the pixels exact: JPEG would blur the edges the boxes are tight to.
            Image.fromarray(rendered.image).save(os.path.join(tmp_dir, IMAGES_DIR, name))
            images.append({"id": image_id, "file_name": name, "height": height, "width": width})
            for obj in rendered.objects:
                annotation = dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=obj.category_id
                )
                annotation.update(bbox=list(obj.bbox), area=obj.area, iscrowd=0)
                if masks:
                    rle = mask_util.encode(np.asfortranarray(obj.mask, dtype=np.uint8))
                    annotation["segmentation"] = {**rle, "counts": rle["counts"].decode()}
                annotations.append(annotation)
        coco = {
            "info": {"description": "FAD synthetic shapes", "generator": params},
            "images": images,
            "annotations": annotations,
            "categories": [
                {"id": i, "name": label, "supercategory": "shape"}
                for i, label in enumerate(SYNTHETIC_CLASSES, start=1)
            ],
        }
        with open(os.path.join(tmp_dir, ANNOTATIONS_FILE), "w", encoding="utf-8") as f:
            json.dump(coco, f)
        os.replace(tmp_dir, target)  # replaces an empty directory, never a full one
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return json_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: generates a dataset, prints its JSON path; returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m fad.data.synthetic",
        description=__doc__.split("\n\n")[0],
        argument_default=argparse.SUPPRESS,  # an option not given: render_synthetic_image's default
    )
    parser.add_argument("--output-dir", required=True, help="dataset directory to create")
    parser.add_argument("--num-images", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--max-objects", type=int)
    parser.add_argument("--empty-fraction", type=float)
    parser.add_argument("--masks", action="store_true", help="also write instance masks (RLE)")
    print(generate_synthetic_coco(**vars(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
