"""Evaluate a finished training run on another COCO-format dataset, for the benchmarks.

The run's own ``config.yaml`` rebuilds its model, ``model_final.pth`` loads into it, and the
config's evaluator (COCOEvaluator) runs on the dataset ``--coco NAME JSON IMAGES``; its results
(flattened as EventStorage holds them: ``bbox/AP``, ...) go to ``RUN/eval_NAME.json``.

    python benchmarks/evaluate_run.py output/run --coco test512 test/annotations.json test/images
"""

import fad.quiet_imports  # noqa: F401

# isort: split
import argparse
import json
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.evaluation import inference_on_dataset
from detectron2.evaluation.testing import flatten_results_dict

from fad.data.datasets import register_coco_dataset
from fad.engine.defaults import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a train_net.py run's train.output_dir")
    parser.add_argument("--coco", nargs=3, required=True, metavar=("NAME", "JSON", "IMAGES"))
    args = parser.parse_args()
    name, json_file, image_root = args.coco
    register_coco_dataset(name=name, json_file=json_file, image_root=image_root)
    cfg = LazyConfig.load(str(args.run_dir / "config.yaml"))
    cfg.dataloader.test.dataset.names = name
    cfg.dataloader.evaluator.dataset_name = name
    torch.manual_seed(0)  # nothing learnt is drawn; the model's init is overwritten by the load
    model = build_model(cfg)
    DetectionCheckpointer(model).load(str(args.run_dir / "model_final.pth"))
    model.eval()
    results = inference_on_dataset(
        model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    out = args.run_dir / f"eval_{name}.json"
    out.write_text(json.dumps(flatten_results_dict(results)))
    print(f"{args.run_dir}: {name} bbox/AP {results['bbox']['AP']:.2f}, written to {out}")


if __name__ == "__main__":
    main()
