# Copyright (c) Facebook, Inc. and its affiliates.
from .base_tracker import (  # noqa
    BaseTracker,
    build_tracker_head,
    TRACKER_HEADS_REGISTRY,
)
from .bbox_iou_tracker import BBoxIOUTracker  # noqa
from .hungarian_tracker import BaseHungarianTracker  # noqa
from .iou_weighted_hungarian_bbox_iou_tracker import (  # noqa
    IOUWeightedHungarianBBoxIOUTracker,
)
from .utils import create_prediction_pairs  # noqa
from .vanilla_hungarian_bbox_iou_tracker import VanillaHungarianBBoxIOUTracker  # noqa

__all__ = [k for k in globals().keys() if not k.startswith("_")]
