"""Two disjoint halves of COCO train2017, for searching the mask tower (weights on one, alphas
on the other), and their loaders.

Make the halves once (seeded, by image; python -m fad.data.coco_split)::

    python -m fad.data.coco_split datasets/coco/annotations/instances_train2017.json \\
        --output datasets/coco/annotations/fad_search_train.json \\
                 datasets/coco/annotations/fad_search_arch.json --fraction 0.5 --seed 0

Importing this config registers them as ``fad_coco_search_train`` and ``fad_coco_search_arch``
(images under ``$DETECTRON2_DATASETS/coco/train2017``); a run checks that the files exist.
"""

import os

from fad.data.datasets import register_coco_dataset

from .voc_search import search_loader

_COCO = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "coco")
for _split in ("train", "arch"):
    register_coco_dataset(
        name=f"fad_coco_search_{_split}",
        json_file=os.path.join(_COCO, "annotations", f"fad_search_{_split}.json"),
        image_root=os.path.join(_COCO, "train2017"),
    )


def mask_search_loader(name: str):
    """A search loader with masks: short side 600 (max 1000), batch 4 (see the search config)."""
    loader = search_loader(name, short_side=600, max_size=1000, batch_size=4)
    loader.mapper.use_instance_mask = True
    return loader


dataloader = {"train": mask_search_loader("fad_coco_search_train")}
dataloader["arch"] = mask_search_loader("fad_coco_search_arch")
