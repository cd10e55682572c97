"""A fixed canvas: every batch padded to one size per orientation, so every shape is fixed.

detectron2 pads a batch to its largest image (rounded up to the backbone's size divisibility),
so the FPN levels take a new shape with almost every batch. On a GPU that defeats CUDA graphs
(:mod:`fad.modeling.cuda_graphs`), which replay kernels recorded for one shape. detectron2's
training loaders already batch landscape and portrait images apart (aspect-ratio grouping), and
every image fits a box of (short side, long side) set by the loader's resize. So a landscape
batch is padded to (short, long) and a portrait batch to (long, short), both rounded up to the
size divisibility: two shapes for a whole run.

The padding is added in the model's preprocessing, after the images are batched, and the
``ImageList`` keeps each image's own size (``image_sizes``): targets, postprocessing and the
rescale of boxes to the original image read those sizes, so they are unchanged. The price is
the extra pixels (``benchmarks/canvas_overhead.py``, docs/BENCHMARKS.md). Like detectron2's own
batch padding, the extra area enters GroupNorm's statistics in the head, so predictions move
slightly.
"""

import logging
import sys
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from detectron2.structures import ImageList

__all__ = ["FixedCanvas"]

logger = logging.getLogger(__name__)


def _round_up(x: int, divisor: int) -> int:
    return x if divisor <= 1 else -(-x // divisor) * divisor


class FixedCanvas:
    """Pads each batch to a fixed canvas: (short, long) for landscape batches, else (long, short).

    Args:
        short_side: the loader's short side (ResizeShortestEdge's ``short_edge_length``); for
            several (multi-scale training), their largest.
        max_size: the loader's longest side (ResizeShortestEdge's ``max_size``).
        enabled: ``"cuda"`` (default) pads batches on CUDA devices only, where fixed shapes let
            CUDA graphs replay (a CPU gains nothing from them and pays for the pixels);
            ``True`` pads on every device, ``False`` never.

    A batch whose padded size exceeds its canvas (images larger than the loader makes, or a
    batch that mixes orientations) keeps detectron2's padding, with a warning the first time:
    the run goes on, eagerly for that shape.
    """

    def __init__(
        self,
        *,
        short_side: Union[int, Sequence[int]],
        max_size: int,
        enabled: Union[str, bool] = "cuda",
    ):
        if not (enabled is True or enabled is False or enabled == "cuda"):  # not 1 or 0
            raise ValueError(f"FixedCanvas.enabled must be 'cuda', True or False, got {enabled!r}")
        if max_size >= sys.maxsize:  # ResizeShortestEdge's default: no limit
            raise ValueError(
                "a fixed canvas needs the long side's limit, the max_size of the loader's "
                "ResizeShortestEdge, and it has none"
            )
        self.short_side = max(short_side) if isinstance(short_side, Sequence) else short_side
        self.max_size = max_size
        if self.short_side > self.max_size:
            raise ValueError(f"short_side {self.short_side} is larger than max_size {max_size}")
        self.enabled = enabled
        self._warned = False

    def applies_to(self, tensor: torch.Tensor) -> bool:
        """Whether a batch on ``tensor``'s device is padded (see ``enabled``). Never in a trace
        or an ONNX export: the orientation test would be fixed at the traced image's, and an
        exported model must serve any size."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False
        return self.enabled is True or (self.enabled == "cuda" and tensor.is_cuda)

    def size(self, *, landscape: bool, size_divisibility: int) -> Tuple[int, int]:
        """(height, width) of the canvas of one orientation (square images count as portrait,
        as detectron2's aspect-ratio grouping counts them)."""
        short = _round_up(self.short_side, size_divisibility)
        long = _round_up(self.max_size, size_divisibility)
        return (short, long) if landscape else (long, short)

    def __call__(self, images: ImageList, *, size_divisibility: int) -> ImageList:
        """Pad a batch to its canvas.

        Args:
            images: the batch as ``ImageList.from_tensors`` made it, (N, C, H, W).
            size_divisibility: the backbone's.

        Returns:
            An ``ImageList`` of (N, C, H_canvas, W_canvas), with ``image_sizes`` unchanged; the
            batch itself when the canvas does not apply.
        """
        if not self.applies_to(images.tensor):
            return images
        landscape = all(w > h for h, w in images.image_sizes)
        height, width = self.size(landscape=landscape, size_divisibility=size_divisibility)
        h, w = images.tensor.shape[-2:]
        if h > height or w > width:
            if not self._warned:
                logger.warning(
                    f"A batch of {h}x{w} pixels does not fit the fixed canvas of "
                    f"{height}x{width} (short side {self.short_side}, long side "
                    f"{self.max_size}): such batches keep their own size."
                )
                self._warned = True
            return images
        tensor = F.pad(images.tensor, (0, width - w, 0, height - h))
        return ImageList(tensor, images.image_sizes)
