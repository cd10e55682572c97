#!/usr/bin/env python
r"""Export a trained FAD detector for deployment, after detectron2's tools/deploy/export_model.py.

The detector (FAD-FCOS, FAD-RetinaNet, or their plain baselines) is traced with detectron2's
TracingAdapter at a sample image and saved as TorchScript (OUTPUT/model.ts, with graph dumps) or
ONNX (OUTPUT/model.onnx; needs `pip install onnx`). The script then runs the exported model on
the sample image (ONNX with onnxruntime, when it is installed) and logs its largest differences
from the eager model.

    python export_model.py --config-file output/quick/train/config.yaml \
        --format torchscript --output output/quick/export \
        train.init_checkpoint=output/quick/train/model_final.pth

A run's config.yaml records the genotypes; a LazyConfig .py takes them from --genotype-file
(or is the paper's). Without train.init_checkpoint the weights are random.

The exported model takes the image after the test loader's resize, a float32 (3, H, W) tensor
in the config's pixel format (BGR), values 0-255, at any size. It returns pred_boxes (R, 4),
pred_classes (R,), scores (R,) and image_size (2,), in the coordinates of that resized image:
scale the boxes by (original width / W, original height / H) to get back to the original image,
as detectron2's detector_postprocess does in eager inference (see fad/engine/export.py).
"""

# First: detectron2's imports below raise deprecation warnings a user cannot act on.
import fad.quiet_imports  # noqa: F401

# isort: split
import argparse
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.utils.logger import setup_logger
from omegaconf import DictConfig

import fad.data  # noqa: F401  (registers the synthetic datasets)
from fad.engine.checkpoint import check_init_checkpoint
from fad.engine.defaults import (
    add_genotype_file_argument,
    build_model_on_meta,
    check_train_options,
    load_config,
    run_checked,
    set_cpu_threads,
)
from fad.engine.export import (
    FILE_NAMES,
    OUTPUT_NAMES,
    check_export_options,
    export_model,
    instances_outputs,
    load_exported,
    max_differences,
    run_exported,
    sample_image,
)

logger = logging.getLogger("fad.export")

#: Outputs of the exported model farther than this from the eager model's are reported.
TOLERANCE = 1e-4


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE",
        help="a LazyConfig .py, or the config.yaml of a train_net.py run (it records the "
        "genotypes)",
    )
    add_genotype_file_argument(parser)
    parser.add_argument(
        "--export-method",
        choices=("tracing", "scripting"),
        default="tracing",
        help="tracing, with detectron2's TracingAdapter (scripting is not supported)",
    )
    parser.add_argument("--format", choices=FILE_NAMES, default="torchscript")
    parser.add_argument("--output", required=True, metavar="DIR", help="where the model goes")
    parser.add_argument(
        "--sample-image",
        metavar="FILE",
        help="the image to trace at and to check the export with (default: a synthetic image)",
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        help="config overrides path.key=value, e.g. train.init_checkpoint=OUT/model_final.pth",
    )
    return parser


def prepare(args: argparse.Namespace) -> DictConfig:
    """Check the command and load the config, before anything is built or written."""
    check_export_options(method=args.export_method, fmt=args.format)
    cfg = load_config(args)
    check_train_options(cfg)
    model = build_model_on_meta(cfg)  # the head's constructor checks towers and genotypes
    if "roi_heads" in cfg.model:  # its outputs have masks, which the export does not carry
        raise ValueError(
            f"export_model.py exports dense detectors (FCOS, RetinaNet), not a "
            f"{type(model).__name__}: for Mask R-CNN use detectron2's tools/deploy/export_model.py"
        )
    if getattr(model, "search", False):
        raise ValueError(
            "this is a search config (its head holds search towers): export the detector trained "
            "with train_net.py from the search's genotype.log"
        )
    check_init_checkpoint(cfg.train.get("init_checkpoint", ""))
    if args.sample_image and not os.path.isfile(args.sample_image):
        raise FileNotFoundError(f"--sample-image: no such file: {args.sample_image}")
    return cfg


def main(args: argparse.Namespace, cfg: DictConfig) -> str:
    """Export, then compare the exported model's outputs with the eager model's.

    Returns:
        The path of the exported model.
    """
    setup_logger(name="fad")
    setup_logger(name="detectron2")
    set_cpu_threads(cfg, processes=1, loader_workers=0)
    device = cfg.train.get("device", "cpu")
    model = instantiate(cfg.model).to(device).eval()
    checkpoint = cfg.train.get("init_checkpoint", "")
    if checkpoint:
        DetectionCheckpointer(model).load(checkpoint)
    else:
        logger.warning("No train.init_checkpoint: exporting a model with random weights")
    inputs = sample_image(cfg, args.sample_image)
    image = inputs["image"].to(device)
    logger.info(
        f"Tracing at a {image.shape[1]}x{image.shape[2]} sample image "
        f"(original {inputs['height']}x{inputs['width']})"
    )
    path, adapter = export_model(model, image, fmt=args.format, output_dir=args.output)
    logger.info(f"Exported to {path}: input image (3, H, W), outputs {', '.join(OUTPUT_NAMES)}")
    logger.info(f"Outputs schema: {adapter.outputs_schema}")

    with torch.no_grad():
        eager = [t.cpu() for t in instances_outputs(model([{"image": image}])[0]["instances"])]
    try:
        exported = load_exported(path)
    except ImportError:
        logger.warning("onnxruntime is not installed: the ONNX model was not run")
        return path
    diffs = max_differences(eager, run_exported(exported, image))
    summary = ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    if max(diffs.values()) > TOLERANCE:
        logger.warning(f"The exported model differs from the eager one by > 1e-4: {summary}")
    else:
        logger.info(f"Exported and eager model agree on {len(eager[0])} detections: {summary}")
    return path


def invoke_main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    cfg = run_checked(parser, prepare, args)
    main(args, cfg)


if __name__ == "__main__":
    invoke_main()
