"""COCO 2017 loaders for training with searched towers: single scale 800 (1x) or multi-scale.

detectron2's common COCO config supplies loaders and the COCO evaluator; boxes only here.
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

dataloader = get_config("common/data/coco.py").dataloader
dataloader.train.mapper.use_instance_mask = False
# The paper's 1x setting trains at short side 800 (detectron2's default samples 640-800).
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
    L(T.RandomFlip)(horizontal=True),
]


def multi_scale(loader) -> None:
    """Multi-scale training of the 2x models: short side drawn from [640, 800] (FCOS's range)."""
    loader.train.mapper.augmentations[0] = L(T.ResizeShortestEdge)(
        short_edge_length=(640, 800), sample_style="range", max_size=1333
    )
