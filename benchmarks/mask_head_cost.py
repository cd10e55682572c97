#!/usr/bin/env python
"""Parameters, FLOPs per RoI and CPU latency of the FAD mask head against Mask R-CNN's.

What: the ``model.roi_heads.mask_head`` of two training configs (COCO, 80 classes), alone:

- FAD: ``configs/fad/augment/fad_mask_rcnn_R_50_FPN_1x.py``, one derived cell of three nodes at
  op width 256, then the 1x1 reduce, the deconv and the predictor. No mask genotype is published,
  so it is given by ``--genotype-file`` (a mask search's ``genotype.log``) or drawn at random
  (``--random N``: seeds 0..N-1, the spread a search's choice moves in);
- Mask R-CNN: ``configs/mask_rcnn/mask_rcnn_R_50_FPN_1x.py``, detectron2's
  ``MaskRCNNConvUpsampleHead`` (four conv3x3-ReLU of 256 channels, deconv, predictor).

Their input is ``--rois`` pooled RoI features of 256 x 14 x 14 (random values), in inference
mode without the class selection (``layers``: the mask logits, 80 x 28 x 28 per RoI).

How::

    python benchmarks/mask_head_cost.py [--genotype-file G] [--random 3] [--rois 64] [--threads 1]

Output: a markdown table of the heads' parameters (M), GFLOPs per RoI (fvcore: 1e9
multiply-adds) and the median CPU latency of one batch of RoIs with its IQR (heads interleaved
per round: ``benchmarks/timing.py``), and each against Mask R-CNN's.
"""

import argparse
import functools
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from detectron2.config import LazyConfig, instantiate
from fvcore.nn import FlopCountAnalysis
from timing import TOTAL, time_interleaved
from torch import nn

from fad.genotypes import Genotype, load_genotype_file, random_genotype

ROOT = Path(__file__).resolve().parents[1]
FAD_CONFIG = "configs/fad/augment/fad_mask_rcnn_R_50_FPN_1x.py"
BASELINE_CONFIG = "configs/mask_rcnn/mask_rcnn_R_50_FPN_1x.py"


def mask_head(config: str, genotype: Genotype = None) -> nn.Module:
    """The mask head of a config, alone, in eval mode; a FAD tower of ``genotype``."""
    cfg = LazyConfig.load(str(ROOT / config)).model.roi_heads
    cfg.mask_head.num_classes = cfg.num_classes
    if genotype is not None:
        cfg.mask_head.tower.genotype = genotype.to_plain()
    torch.manual_seed(0)
    return instantiate(cfg.mask_head).eval()


def cost(head: nn.Module, rois: torch.Tensor) -> Tuple[float, float]:
    """Parameters (M) and GFLOPs per RoI of ``head.layers``."""
    flops = FlopCountAnalysis(head, (rois[:1],)).unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    head.forward = head.layers  # the logits, without inference's per-class selection
    return sum(p.numel() for p in head.parameters()) / 1e6, flops.total() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genotype-file", help="a mask search's genotype.log")
    parser.add_argument("--random", type=int, default=3, help="random mask genotypes: seeds")
    parser.add_argument("--rois", type=int, default=64, help="RoIs per forward")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    genotypes: Dict[str, Genotype] = {}
    if args.genotype_file:
        (genotypes["searched"],) = load_genotype_file(args.genotype_file).values()
    genotypes.update({f"random {s}": random_genotype(seed=s) for s in range(args.random)})
    heads = {"Mask R-CNN": mask_head(BASELINE_CONFIG)}
    heads.update({f"FAD ({name})": mask_head(FAD_CONFIG, g) for name, g in genotypes.items()})
    rois = torch.randn(args.rois, 256, 14, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        costs = {name: cost(head, rois) for name, head in heads.items()}
        steps = {name: functools.partial(head, rois) for name, head in heads.items()}
        times = time_interleaved(steps, rounds=args.repeats, warmup=args.warmup)
    print(
        f"{args.rois} RoIs of 256x14x14, {torch.get_num_threads()} CPU thread(s), torch "
        f"{torch.__version__}; GFLOPs per RoI = 1e9 multiply-adds (fvcore)"
    )
    for name, g in genotypes.items():
        print(f"{name}: {g}")
    print("| mask head | params (M) | GFLOPs / RoI | CPU ms | IQR ms | params | GFLOPs | ms |")
    print("|---|---|---|---|---|---|---|---|")
    base_params, base_flops = costs["Mask R-CNN"]
    base_ms = times["Mask R-CNN"][TOTAL].median
    rows: List[str] = []
    for name in heads:
        (params, flops), t = costs[name], times[name][TOTAL]
        ratios = f"{params / base_params:.2f}x | {flops / base_flops:.2f}x"
        rows.append(
            f"| {name} | {params:.2f} | {flops:.2f} | {t.median * 1e3:.0f} | {t.iqr * 1e3:.0f} "
            f"| {ratios} | {t.median / base_ms:.2f}x |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
