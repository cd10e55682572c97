# Copyright (c) Facebook, Inc. and its affiliates.
from .coco import register_coco_instances  # noqa
from .coco_panoptic import register_coco_panoptic_separated  # noqa
