#!/usr/bin/env python
"""CPU latency of exported FAD detectors: eager PyTorch, TorchScript and ONNX Runtime.

What: each config's detector (random weights; the paper's genotypes for the FAD configs) is
exported as ``export_model.py`` exports it (``fad.engine.export``: detectron2's TracingAdapter,
traced at the benchmark's image) to TorchScript and, if ``onnx`` and ``onnxruntime`` are
installed, to ONNX. The three then run the same image, one at a time, in rounds (the order
rotates each round, so a busy spell of a shared machine hits all alike: benchmarks/timing.py);
each figure is the median (and IQR) over the timed rounds of one whole inference:
normalisation, backbone, head and post-processing (score threshold, top-k, NMS; random weights
give few detections, so post-processing is a small part). The image is a synthetic one (shapes
on a textured background) of ``--size`` pixels, given as the model's input as is.

How::

    python benchmarks/export_latency.py [--size 800 1333] [--rounds 5] [--warmup 3] [--threads 1]
    python benchmarks/export_latency.py --configs configs/fad/augment/fad_fcos_R_18_synthetic.py \
        --size 128 128

Output: per config a markdown row with the milliseconds of each runtime (median, IQR), the
median's ratio to eager, and the largest difference of the exported models' boxes and scores
from the eager ones.
Results: docs/BENCHMARKS.md.
"""

import argparse
import importlib.util
import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import torch
from detectron2.config import LazyConfig, instantiate
from pipeline import ROOT
from timing import TOTAL, time_interleaved

from fad.data.synthetic import render_synthetic_image
from fad.engine.export import (
    export_model,
    instances_outputs,
    load_exported,
    max_differences,
    run_exported,
)

CONFIGS = (
    "configs/fad/augment/fad_fcos_R_50_FPN_1x.py",
    "configs/fad/augment/fad_retinanet_R_50_FPN_1x.py",
)


def build(config: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return instantiate(LazyConfig.load(str(ROOT / config)).model).eval()


def runtimes(
    model: torch.nn.Module, image: torch.Tensor, out: Path, *, threads: int
) -> Dict[str, Callable[[], List[torch.Tensor]]]:
    """Each runtime's inference on ``image``, as a function returning the output tensors."""
    runs = {}

    def eager() -> List[torch.Tensor]:
        with torch.no_grad():
            return instances_outputs(model([{"image": image}])[0]["instances"])

    runs["eager"] = eager
    path, _ = export_model(model, image, fmt="torchscript", output_dir=str(out))
    traced = load_exported(path)
    runs["TorchScript"] = lambda: run_exported(traced, image)
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        import onnxruntime

        path, _ = export_model(model, image, fmt="onnx", output_dir=str(out))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        runs["ONNX Runtime"] = lambda: run_exported(session, image)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--size", nargs=2, type=int, default=[800, 1333], metavar=("H", "W"))
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.size)
    # Shapes of up to 400 px, and at most half the image's short side (at a small --size, such as
    # 128 128, larger shapes would not fit).
    largest = min(400, min(size) // 2)
    rgb = render_synthetic_image(
        seed=0, index=0, image_size=size, min_size=min(64, largest), max_size=largest
    )
    image = torch.as_tensor(rgb.image[:, :, ::-1].transpose(2, 0, 1).astype("float32"))  # BGR
    print(
        f"image {size[0]}x{size[1]}, {args.threads} thread(s), torch {torch.__version__}, "
        f"median of {args.rounds} rounds after {args.warmup} warm-up rounds"
    )
    rows = []
    for config in args.configs:
        model = build(config)
        with tempfile.TemporaryDirectory(prefix="fad_export_") as out:
            runs = runtimes(model, image, Path(out), threads=args.threads)
            eager = runs["eager"]()
            diffs = {name: max_differences(eager, run()) for name, run in runs.items()}
            # The warm-up rounds also let the TorchScript executor specialise and optimise its
            # graph in its first runs.
            times = time_interleaved(runs, rounds=args.rounds, warmup=args.warmup)
        ms = {name: t[TOTAL].median * 1e3 for name, t in times.items()}
        for name in runs:
            d = diffs[name]
            rows.append(
                f"| {Path(config).stem} | {name} | {ms[name]:.0f} "
                f"| {times[name][TOTAL].iqr * 1e3:.0f} | {ms[name] / ms['eager']:.2f} "
                f"| {len(eager[0])} | {d['pred_boxes']:.1e} | {d['scores']:.1e} |"
            )
    print()
    print(
        "| config | runtime | ms | IQR ms | / eager | detections | max box diff | max score diff |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
