"""Split a COCO-format JSON file into two by image: the two annotated splits a search needs.

A search learns the weights on one split, the architecture on another (docs/METHOD.md section 8;
for COCO, split train2017). Each image goes to one output with its annotations, the other keys to
both; the draw is seeded. Register both with ``--register-coco`` under the same image root::

    python -m fad.data.coco_split instances_train2017.json \\
        --output search_train.json search_arch.json --fraction 0.5 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any, Optional, Sequence

from fad.utils import atomic_open

__all__ = ["main", "split_coco"]


def split_coco(
    coco: dict[str, Any], *, fraction: float, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a COCO annotation dict by image.

    Args:
        coco: a COCO-format dict with ``images``, ``annotations`` and ``categories``.
        fraction: the share of the images that goes to the first split, in (0, 1).
        seed: seed of the draw.

    Returns:
        Two COCO dicts with disjoint images, together all of ``coco``'s, each with the
        annotations of its images. ValueError for a fraction outside (0, 1) or an empty split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--fraction must be in (0, 1), got {fraction}")
    ids = sorted(image["id"] for image in coco.get("images") or [])
    first_count = round(fraction * len(ids))
    if not 0 < first_count < len(ids):
        raise ValueError(f"{len(ids)} images cannot make two non-empty splits with {fraction=}")
    first_ids = set(random.Random(seed).sample(ids, first_count))

    halves = [{**coco, "images": [], "annotations": []} for _ in range(2)]  # [first, second]
    for image in coco["images"]:
        halves[image["id"] not in first_ids]["images"].append(image)
    for annotation in coco.get("annotations", []):
        halves[annotation["image_id"] not in first_ids]["annotations"].append(annotation)
    return halves[0], halves[1]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m fad.data.coco_split", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("json_file", help="the COCO-format annotation file to split")
    parser.add_argument("--output", nargs=2, required=True, metavar=("FIRST", "SECOND"))
    parser.add_argument("--fraction", type=float, default=0.5, help="images in FIRST (0.5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        with open(args.json_file, encoding="utf-8") as f:
            splits = split_coco(json.load(f), fraction=args.fraction, seed=args.seed)
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        parser.error(" ".join(str(e).split()))
    for path, split in zip(args.output, splits):
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump(split, f)
        print(f"{path}: {len(split['images'])} images, {len(split['annotations'])} annotations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
