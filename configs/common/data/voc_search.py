"""VOC 2012 for the search (docs/METHOD.md section 8): weights learn on train, alphas on val.

The two splits must differ: the original code's "validation" loader read the training data.
Images: short side 416 (max 693), batch 4.
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import (
    DatasetMapper,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from omegaconf import OmegaConf


def search_loader(
    names: str, *, short_side: int, max_size: int, batch_size: int, filter_empty: bool = True
):
    """A training loader config (random flip, fixed short side) over the named datasets."""
    return L(build_detection_train_loader)(
        dataset=L(get_detection_dataset_dicts)(names=names, filter_empty=filter_empty),
        mapper=L(DatasetMapper)(
            is_train=True,
            augmentations=[
                L(T.ResizeShortestEdge)(short_edge_length=short_side, max_size=max_size),
                L(T.RandomFlip)(horizontal=True),
            ],
            image_format="BGR",
        ),
        total_batch_size=batch_size,
        num_workers=4,
    )


dataloader = OmegaConf.create()
dataloader.train = search_loader("voc_2012_train", short_side=416, max_size=693, batch_size=4)
dataloader.arch = search_loader("voc_2012_val", short_side=416, max_size=693, batch_size=4)
