"""Deployment: a dense detector traced with detectron2's ``TracingAdapter`` (as its
``tools/deploy/export_model.py`` traces one), saved as TorchScript or ONNX. The exported model
takes an image after the test loader's resize, a float32 (3, H, W) tensor in the config's pixel
format, 0-255, at any size, and returns :data:`OUTPUT_NAMES` in its coordinates (normalisation
and post-processing inside, the resize back to the original size not)."""

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import detectron2.data.transforms as T
import numpy as np
import torch
from detectron2.config import instantiate
from detectron2.data import detection_utils
from detectron2.export import STABLE_ONNX_OPSET_VERSION, TracingAdapter, dump_torchscript_IR
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.structures import Instances
from omegaconf import DictConfig
from PIL import Image
from torch import nn

from fad.data.synthetic import render_synthetic_image

#: The exported model's outputs, in detectron2's flattening of ``Instances`` (fields by name,
#: then the image size): (R, 4), (R,), (R,), (2,) for R detections.
OUTPUT_NAMES = ("pred_boxes", "pred_classes", "scores", "image_size")
#: The file of each format.
FILE_NAMES = {"torchscript": "model.ts", "onnx": "model.onnx"}


def check_export_options(*, method: str, fmt: str) -> None:
    """Refuses (ValueError, saying why and what to do) ``method="scripting"``, and ``fmt="onnx"``
    without the ``onnx`` package."""
    if method != "tracing":
        raise ValueError(
            f"--export-method {method} is not supported: torch.jit.script compiles neither the "
            "FAD head (generators over the FPN levels, cells built from lambdas) nor the "
            "backbones LazyConfig builds (ListConfig attributes); use --export-method tracing"
        )
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401  (torch.onnx.export writes through it)
        except ImportError:
            raise ValueError(
                "--format onnx needs the onnx package: pip install onnx onnxruntime"
            ) from None


def sample_image(cfg: DictConfig, path: Optional[str] = None) -> Dict[str, object]:
    """A sample input from the image file ``path`` (``None``: a 480x640 synthetic image),
    resized as ``dataloader.test.mapper`` resizes images.

    Returns:
        ``{"image": (3, H, W) float32 tensor, "height": ..., "width": ...}`` (original size).
    """
    mapper = cfg.dataloader.test.mapper
    fmt = mapper.get("image_format", "BGR")
    if path is None:
        rgb = render_synthetic_image(
            seed=0, index=0, image_size=(480, 640), min_size=64, max_size=224
        ).image
        image = detection_utils.convert_PIL_to_numpy(Image.fromarray(rgb), fmt)
    else:
        image = detection_utils.read_image(path, format=fmt)
    aug_input = T.AugInput(image)
    T.AugmentationList(instantiate(list(mapper.get("augmentations", []))))(aug_input)
    resized = np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)).astype("float32")
    return {"image": torch.as_tensor(resized), "height": image.shape[0], "width": image.shape[1]}


def export_model(
    model: nn.Module, image: torch.Tensor, *, fmt: str, output_dir: str
) -> Tuple[str, TracingAdapter]:
    """Traces a dense detector in eval mode at ``image`` and saves it.

    Args:
        image: (3, H, W) sample image (:func:`sample_image`).
        fmt: ``"torchscript"`` (``model.ts`` and detectron2's ``dump_torchscript_IR`` dumps)
            or ``"onnx"`` (``model.onnx``, height and width dynamic).
        output_dir: where the files go (created if needed).

    Returns:
        The exported model's path, and the adapter (its ``outputs_schema`` rebuilds
        ``Instances`` from the outputs).
    """
    if not isinstance(model, DenseDetector):  # the others' outputs are not OUTPUT_NAMES
        raise ValueError(f"export dense detectors (FCOS, RetinaNet), not a {type(model).__name__}")
    if model.training:
        raise ValueError("export a model in eval mode (model.eval())")
    # In eval mode: torch.onnx.export puts a module back in the mode it found it in.
    adapter = TracingAdapter(model, [{"image": image}]).eval()
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, FILE_NAMES[fmt])
    with torch.no_grad(), warnings.catch_warnings():
        # A warning per Python value recorded as a constant; the outputs are checked instead.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if fmt == "torchscript":
            traced = torch.jit.trace(adapter, (image,), check_trace=False)
            torch.jit.save(traced, path)
            dump_torchscript_IR(traced, output_dir)
        else:
            torch.onnx.export(
                adapter,
                (image,),
                path,
                opset_version=STABLE_ONNX_OPSET_VERSION,
                dynamo=False,  # the TorchScript-based exporter, which traces as detectron2 does
                input_names=["image"],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={"image": {1: "height", 2: "width"}},
            )
    return path, adapter


def load_exported(path: str):
    """A TorchScript module, or for a ``.onnx`` file an onnxruntime ``InferenceSession`` (CPU)."""
    if path.endswith(".onnx"):
        import onnxruntime

        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.jit.load(path)


def run_exported(exported, image: torch.Tensor) -> List[torch.Tensor]:
    """The outputs (:data:`OUTPUT_NAMES`, on the CPU) of a :func:`load_exported` model for a
    (3, H, W) float32 image."""
    if isinstance(exported, torch.jit.ScriptModule):
        with torch.no_grad():
            return [o.cpu() for o in exported(image)]
    return [torch.as_tensor(o) for o in exported.run(None, {"image": image.cpu().numpy()})]


def instances_outputs(instances: Instances) -> List[torch.Tensor]:
    """An eager model's ``Instances`` as the exported model's tensors (:data:`OUTPUT_NAMES`)."""
    size = torch.tensor(instances.image_size)
    return [instances.pred_boxes.tensor, instances.pred_classes, instances.scores, size]


def max_differences(
    eager: Sequence[torch.Tensor], exported: Sequence[torch.Tensor]
) -> Dict[str, float]:
    """Per output of :data:`OUTPUT_NAMES`, the largest absolute difference (``inf`` when the
    shapes differ, e.g. another number of detections)."""
    return {
        name: max([0.0, *(a.double() - b.double()).abs().flatten().tolist()])
        if a.shape == b.shape
        else float("inf")
        for name, a, b in zip(OUTPUT_NAMES, eager, exported)
    }
