"""The synthetic dataset with instance masks, for Mask R-CNN: the images of
configs/common/data/synthetic.py, whose annotations also hold each object's visible pixels as
COCO RLE (the fad_synthetic_mask_* splits); COCO evaluation scores boxes and masks."""

from .synthetic import dataloader

for _split, _name in (("train", "train"), ("arch", "arch"), ("test", "val")):
    dataloader[_split].dataset.names = f"fad_synthetic_mask_{_name}"
for _split in ("train", "arch"):
    dataloader[_split].mapper.use_instance_mask = True
    # RLE masks, not polygons: an object that another hides in part can have a hole.
    dataloader[_split].mapper.instance_mask_format = "bitmask"
# Boxes and masks, also for a short run whose model predicts nothing yet (the evaluator would
# infer the tasks from the predictions).
dataloader.evaluator.tasks = ("bbox", "segm")
