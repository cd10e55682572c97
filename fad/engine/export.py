"""Deployment: a trained detector exported with detectron2's export API, as export_model.py does.

The model is traced through :class:`detectron2.export.TracingAdapter`, as detectron2's
``tools/deploy/export_model.py`` traces its dense detectors: the exported model takes one
image tensor and returns tensors only. For FCOS and RetinaNet (with FAD heads or not) they are

    pred_boxes (R, 4), pred_classes (R,), scores (R,), image_size (2,)

for the R detections of the image, in the coordinates of the image it was given.

Input: the image after the test loader's resize, a float32 (3, H, W) tensor in the config's
pixel format (BGR for the configs of this project), values 0-255; normalisation, padding and
post-processing (score threshold, top-k, NMS) are in the exported model. The resize to the
original image size is not, as in detectron2: scale the boxes by (original width / W, original
height / H), or pass them as ``Instances`` to ``detectron2.modeling.postprocessing.
detector_postprocess(instances, original_height, original_width)``.

The model is traced once, at the sample image's size, and runs at any size: the traced graph
computes shapes from the input, and the head's CPU-only path (the polyphase dilated depthwise
conv of :class:`fad.nas.ops.DilatedDepthwiseConv`) is left out of traces for the direct conv,
whose graph does not depend on the input size.

Formats: TorchScript (``model.ts``, with detectron2's dumps of the graph beside it) and ONNX
(``model.onnx``, opset ``STABLE_ONNX_OPSET_VERSION``, height and width dynamic), which needs the
``onnx`` package; ``onnxruntime`` runs it. Scripting is refused: the FAD head's Python
(generators over the FPN levels, cells built from lambdas) and the backbones that LazyConfig
builds (their ``ListConfig`` attributes) do not compile with ``torch.jit.script``.
"""

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import detectron2.data.transforms as T
import numpy as np
import torch
from detectron2.config import instantiate
from detectron2.data import detection_utils
from detectron2.export import STABLE_ONNX_OPSET_VERSION, TracingAdapter, dump_torchscript_IR
from detectron2.structures import Instances
from omegaconf import DictConfig
from PIL import Image
from torch import nn

from fad.data.synthetic import render_synthetic_image

__all__ = [
    "EXPORT_METHODS",
    "FORMATS",
    "OUTPUT_NAMES",
    "check_export_options",
    "export_model",
    "instances_outputs",
    "load_exported",
    "max_differences",
    "run_exported",
    "sample_image",
    "tracing_adapter",
]

EXPORT_METHODS = ("tracing", "scripting")
FORMATS = ("torchscript", "onnx")
#: The exported model's outputs, in the order of detectron2's flattening of ``Instances``
#: (fields sorted by name, then the image size).
OUTPUT_NAMES = ("pred_boxes", "pred_classes", "scores", "image_size")
FILE_NAMES = {"torchscript": "model.ts", "onnx": "model.onnx"}

#: The synthetic sample image (when no --sample-image is given): its size, and its shapes sized
#: as the synthetic dataset's are for its 128-px images.
_SAMPLE_SIZE = (480, 640)


def check_export_options(*, method: str, fmt: str) -> None:
    """Raises ValueError, saying why and what to do, for an export that cannot be made.

    Args:
        method: ``"tracing"`` (``"scripting"`` is refused with the reason).
        fmt: ``"torchscript"`` or ``"onnx"`` (which needs the ``onnx`` package).
    """
    if method not in EXPORT_METHODS:
        raise ValueError(f"--export-method must be one of {', '.join(EXPORT_METHODS)}")
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    if method == "scripting":
        raise ValueError(
            "--export-method scripting is not supported: torch.jit.script compiles neither the "
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
    """A sample input, prepared as the test loader prepares images (its resize and format).

    Args:
        cfg: the detector's config, with ``dataloader.test.mapper`` (``augmentations``,
            ``image_format``).
        path: an image file; ``None`` renders a synthetic image (shapes on a textured
            background, from :mod:`fad.data.synthetic`).

    Returns:
        ``{"image": (3, H, W) float32 tensor, "height": original height, "width": original
        width}``, a detectron2 model input.
    """
    mapper = cfg.dataloader.test.mapper
    fmt = mapper.get("image_format", "BGR")
    if path is None:
        rgb = render_synthetic_image(
            seed=0, index=0, image_size=_SAMPLE_SIZE, min_size=64, max_size=224
        ).image
        image = detection_utils.convert_PIL_to_numpy(Image.fromarray(rgb), fmt)
    else:
        image = detection_utils.read_image(path, format=fmt)
    height, width = image.shape[:2]
    augmentations = T.AugmentationList(instantiate(list(mapper.get("augmentations", []))))
    aug_input = T.AugInput(image)
    augmentations(aug_input)
    resized = np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)).astype("float32")
    return {"image": torch.as_tensor(resized), "height": height, "width": width}


def tracing_adapter(model: nn.Module, image: torch.Tensor) -> TracingAdapter:
    """detectron2's ``TracingAdapter`` around a detector in eval mode: one image tensor in,
    the flattened ``Instances`` out (:data:`OUTPUT_NAMES`).

    The adapter is left in eval mode: ``torch.onnx.export`` puts a module back in the mode it
    found it in, and a detector in training mode would compute losses.

    Args:
        model: a detectron2 dense detector (FCOS, RetinaNet), in eval mode.
        image: (3, H, W) sample image.
    """
    if model.training:
        raise ValueError("export a model in eval mode (model.eval())")
    return TracingAdapter(model, [{"image": image}]).eval()


def export_model(
    model: nn.Module, image: torch.Tensor, *, fmt: str, output_dir: str
) -> Tuple[str, TracingAdapter]:
    """Trace a detector at ``image`` and save it.

    Args:
        model: a detectron2 dense detector in eval mode.
        image: (3, H, W) sample image (see :func:`sample_image`).
        fmt: ``"torchscript"`` (``model.ts`` and the graph dumps of
            ``detectron2.export.dump_torchscript_IR``) or ``"onnx"`` (``model.onnx``).
        output_dir: where the files go (created if needed).

    Returns:
        The path of the exported model, and the adapter (its ``outputs_schema`` rebuilds
        ``Instances`` from the outputs).
    """
    check_export_options(method="tracing", fmt=fmt)
    adapter = tracing_adapter(model, image)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, FILE_NAMES[fmt])
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about every Python value it records as a constant, as detectron2's
        # post-processing has many; outputs are compared with the eager model's instead.
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
    _check_outputs(adapter)
    return path, adapter


def _check_outputs(adapter: TracingAdapter) -> None:
    """Raises ValueError unless the traced model returned one image's ``Instances`` with the
    fields of :data:`OUTPUT_NAMES` (which name the ONNX outputs)."""
    schema = adapter.outputs_schema
    try:
        fields = tuple(schema.schemas[0].schemas[0].keys)  # [{"instances": Instances}]
    except (AttributeError, IndexError):
        fields = None
    if fields != OUTPUT_NAMES[:-1]:
        raise ValueError(
            f"export_model.py exports dense detectors returning {', '.join(OUTPUT_NAMES[:-1])}; "
            f"this model's outputs are {schema}"
        )


def load_exported(path: str):
    """Load an exported model: a TorchScript module, or an onnxruntime ``InferenceSession``
    (CPU) for a ``.onnx`` file."""
    if path.endswith(".onnx"):
        import onnxruntime

        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.jit.load(path)


def run_exported(exported, image: torch.Tensor) -> List[torch.Tensor]:
    """The outputs of a loaded exported model (:func:`load_exported`) for one image.

    Args:
        exported: a TorchScript module or an onnxruntime session.
        image: (3, H, W) float32 image.

    Returns:
        The tensors of :data:`OUTPUT_NAMES`, on the CPU.
    """
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
    diffs = {}
    for name, a, b in zip(OUTPUT_NAMES, eager, exported):
        if a.shape != b.shape:
            diffs[name] = float("inf")
        else:
            diffs[name] = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    return diffs
