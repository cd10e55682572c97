"""A fixed canvas: every batch padded to one size per orientation, so that CUDA graphs
(:mod:`fad.modeling.cuda_graphs`), recorded per shape, replay. Padding keeps ``image_sizes``, so
targets and postprocessing are unchanged; like detectron2's own, the extra area enters the head's
GroupNorm statistics (docs/BENCHMARKS.md)."""

import logging
import sys
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from detectron2.structures import ImageList

__all__ = ["FixedCanvas"]

logger = logging.getLogger(__name__)


class FixedCanvas:
    """Pads each batch (detectron2's loaders batch landscape and portrait images apart) to
    (short, long) if landscape, else (long, short), both rounded up to the size divisibility. A
    batch larger than its canvas (mixed orientations, or larger images than the loader's resize
    makes) keeps its size, with a warning the first time.

    Args:
        short_side: the loader's short side (ResizeShortestEdge's ``short_edge_length``); the
            largest of several (multi-scale training).
        max_size: the loader's longest side (ResizeShortestEdge's ``max_size``).
        enabled: ``"cuda"`` pads batches on CUDA devices only (a CPU has no graphs to gain);
            ``True`` on every device, ``False`` never.
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
                "a fixed canvas needs the long side's limit: the loader's resize has no max_size"
            )
        self.short_side = max(short_side) if isinstance(short_side, Sequence) else short_side
        self.max_size = max_size
        if self.short_side > self.max_size:
            raise ValueError(f"short_side {self.short_side} is larger than max_size {max_size}")
        self.enabled = enabled
        self._warned = False

    def size(self, *, landscape: bool, size_divisibility: int) -> Tuple[int, int]:
        """(height, width) of one orientation's canvas (square counts as portrait, as detectron2's
        aspect-ratio grouping counts it)."""
        d = max(size_divisibility, 1)
        short, long = (-(-side // d) * d for side in (self.short_side, self.max_size))  # ceil
        return (short, long) if landscape else (long, short)

    def __call__(self, images: ImageList, *, size_divisibility: int) -> ImageList:
        """Pad a batch to its canvas; never in a trace or an ONNX export, which must serve any size.

        Args:
            images: the batch as ``ImageList.from_tensors`` made it, (N, C, H, W).
            size_divisibility: the backbone's.

        Returns:
            An ``ImageList`` of (N, C, H_canvas, W_canvas), ``image_sizes`` unchanged; or
            ``images`` when the canvas does not apply.
        """
        on = self.enabled is True or (self.enabled == "cuda" and images.tensor.is_cuda)
        if not on or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return images
        landscape = all(w > h for h, w in images.image_sizes)
        height, width = self.size(landscape=landscape, size_divisibility=size_divisibility)
        h, w = images.tensor.shape[-2:]
        if h > height or w > width:
            if not self._warned:
                logger.warning(
                    f"A {h}x{w} batch does not fit the {height}x{width} canvas of short side "
                    f"{self.short_side}, long side {self.max_size}: such batches keep their size"
                )
                self._warned = True
            return images
        return ImageList(F.pad(images.tensor, (0, width - w, 0, height - h)), images.image_sizes)
