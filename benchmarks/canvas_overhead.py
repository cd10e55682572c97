#!/usr/bin/env python
"""Extra pixels of the fixed canvas (``model.fixed_canvas``) against detectron2's padding.

What: detectron2 pads each batch to its largest image, rounded up to the backbone's size
divisibility (32); the fixed canvas (:class:`fad.modeling.canvas.FixedCanvas`) pads every
landscape batch to (short side, long side) and every portrait batch to (long side, short side),
rounded up the same way. Batches are drawn from an assumed size distribution of the dataset's
original images, grouped by orientation as detectron2's aspect-ratio grouping batches them, each
image resized as ``ResizeShortestEdge`` resizes it (for multi-scale training, a short side drawn
uniformly from the range).

Size distributions (assumed: the datasets are not on this machine; their images are mostly of a
few camera formats, 500 px (VOC) or 640 px (COCO) on the long side), (height x width, share):

- VOC 2012: 375x500 40%, 333x500 20%, 400x500 5%, 281x500 5%, 500x500 3%, 500x375 15%,
  500x333 7%, 500x400 3%, 500x281 2%;
- COCO 2017: 480x640 55%, 427x640 20%, 360x640 3%, 512x640 3%, 640x640 2%, 640x480 12%,
  640x427 5%.

How::

    python benchmarks/canvas_overhead.py [--batches 20000]

Output: a markdown table per setting (the search's VOC 416/693 at batch 4, COCO 800/1333 and the
multi-scale 640-800/1333 at 2 images per GPU): mean pixels per image of the images themselves,
of detectron2's padded batch and of the canvas, and the canvas's extra pixels relative to both;
then ``canvas_extra_<setting>=<fraction>`` lines (relative to detectron2's padding).
Results: docs/BENCHMARKS.md.
"""

import argparse
import random
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

from fad.modeling.canvas import FixedCanvas

VOC_SIZES = [
    ((375, 500), 40),
    ((333, 500), 20),
    ((400, 500), 5),
    ((281, 500), 5),
    ((500, 500), 3),
    ((500, 375), 15),
    ((500, 333), 7),
    ((500, 400), 3),
    ((500, 281), 2),
]
COCO_SIZES = [
    ((480, 640), 55),
    ((427, 640), 20),
    ((360, 640), 3),
    ((512, 640), 3),
    ((640, 640), 2),
    ((640, 480), 12),
    ((640, 427), 5),
]


class Setting(NamedTuple):
    name: str
    sizes: List[Tuple[Tuple[int, int], float]]
    short_side: Union[int, Tuple[int, int]]
    max_size: int
    batch_size: int


SETTINGS = (
    Setting("voc_search", VOC_SIZES, 416, 693, 4),
    Setting("coco_1x", COCO_SIZES, 800, 1333, 2),
    Setting("coco_ms", COCO_SIZES, (640, 800), 1333, 2),
)


def _round_up(x: int, divisor: int) -> int:
    return -(-x // divisor) * divisor


def resize(height: int, width: int, *, short: int, max_size: int) -> Tuple[int, int]:
    """The size ``ResizeShortestEdge`` gives an image (detectron2's rounding)."""
    scale = min(short / min(height, width), max_size / max(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def overhead(
    setting: Setting, *, num_batches: int, size_divisibility: int = 32, seed: int = 0
) -> Dict[str, float]:
    """Mean pixels per image (images, detectron2's batches, the canvas) and the canvas's extra.

    Returns:
        ``image_px``, ``batch_px``, ``canvas_px``, ``extra_vs_batch``, ``extra_vs_image``.
    """
    rng = random.Random(seed)
    lo, hi = (
        (setting.short_side, setting.short_side)
        if isinstance(setting.short_side, int)
        else setting.short_side
    )
    canvas = FixedCanvas(short_side=hi, max_size=setting.max_size, enabled=True)
    population: Sequence[Tuple[int, int]] = [s for s, _ in setting.sizes]
    weights = [w for _, w in setting.sizes]
    pools: Dict[bool, List[Tuple[int, int]]] = {True: [], False: []}
    totals = {"image_px": 0, "batch_px": 0, "canvas_px": 0}
    done = 0
    while done < num_batches:
        h0, w0 = rng.choices(population, weights)[0]
        h, w = resize(h0, w0, short=rng.randint(lo, hi), max_size=setting.max_size)
        landscape = w > h
        pool = pools[landscape]
        pool.append((h, w))
        if len(pool) < setting.batch_size:
            continue
        batch_h = _round_up(max(s[0] for s in pool), size_divisibility)
        batch_w = _round_up(max(s[1] for s in pool), size_divisibility)
        ch, cw = canvas.size(landscape=landscape, size_divisibility=size_divisibility)
        totals["image_px"] += sum(a * b for a, b in pool)
        totals["batch_px"] += len(pool) * batch_h * batch_w
        totals["canvas_px"] += len(pool) * ch * cw
        pool.clear()
        done += 1
    out = {k: v / (num_batches * setting.batch_size) for k, v in totals.items()}
    out["extra_vs_batch"] = out["canvas_px"] / out["batch_px"] - 1
    out["extra_vs_image"] = out["canvas_px"] / out["image_px"] - 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=20000, help="batches drawn per setting")
    args = parser.parse_args()
    print(
        "| setting | short, long side | batch | canvas (landscape) | image px | detectron2 "
        "batch px | canvas px | canvas extra vs batch | vs image |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    results = {}
    for s in SETTINGS:
        r = results[s.name] = overhead(s, num_batches=args.batches)
        short = s.short_side if isinstance(s.short_side, int) else "-".join(map(str, s.short_side))
        hi = s.short_side if isinstance(s.short_side, int) else max(s.short_side)
        ch, cw = FixedCanvas(short_side=hi, max_size=s.max_size).size(
            landscape=True, size_divisibility=32
        )
        print(
            f"| {s.name} | {short}, {s.max_size} | {s.batch_size} | {ch}x{cw} "
            f"| {r['image_px']:,.0f} | {r['batch_px']:,.0f} | {r['canvas_px']:,.0f} "
            f"| {r['extra_vs_batch']:+.1%} | {r['extra_vs_image']:+.1%} |"
        )
    for name, r in results.items():
        print(f"canvas_extra_{name}={r['extra_vs_batch']:.4f}")


if __name__ == "__main__":
    main()
