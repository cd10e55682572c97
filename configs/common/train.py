"""detectron2's common training options (output_dir, max_iter, checkpointer, ddp, ...)."""

from detectron2.model_zoo import get_config

train = get_config("common/train.py").train
