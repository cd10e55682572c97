"""``model.fixed_canvas``: pad every batch to a fixed size per orientation (fad.modeling.canvas).

Fixed shapes let CUDA graphs replay the head (``train.cuda_graphs``). The canvas is sized by the
training loader's resize, read by interpolation, so overriding the loader's sizes resizes it.
"""

from detectron2.config import LazyCall as L

from fad.modeling.canvas import FixedCanvas

_RESIZE = "dataloader.train.mapper.augmentations.0"


def fixed_canvas(*, enabled="cuda"):
    """The canvas of the training loader's ``ResizeShortestEdge`` (its first augmentation).

    Args:
        enabled: ``"cuda"``: batches on CUDA devices only (the model decides per batch, so a
            config serves both devices); ``True``: every batch; ``False``: none.
    """
    return L(FixedCanvas)(
        short_side=f"${{{_RESIZE}.short_edge_length}}",
        max_size=f"${{{_RESIZE}.max_size}}",
        enabled=enabled,
    )
