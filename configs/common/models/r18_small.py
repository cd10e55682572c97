"""Shrink a FCOS, RetinaNet or Mask R-CNN model config (FAD or not) to a CPU-sized ResNet-18 FPN
for short runs from scratch on 128-px images (tests, the quick start, the synthetic benchmarks).

ResNet-18 from scratch (no weights can be downloaded in tests), BasicBlock stages with
res5 at 512 channels, a 64-wide FPN and ops. Width 32 would leave GroupNorm(32) one channel
per group, and a single value per group on the 1x1 P7 map of a 128-px image, which torch refuses.
"""

from detectron2.layers import ShapeSpec

FPN_CHANNELS = 64
RES5_CHANNELS = 512  # ResNet-18's last stage


def _shrink_backbone(backbone) -> None:
    """ResNet-18 from scratch (BN, nothing frozen) under an FPN of width FPN_CHANNELS."""
    backbone.bottom_up.stages.depth = 18
    del backbone.bottom_up.stages.stride_in_1x1
    backbone.bottom_up.stem.norm = "BN"
    backbone.bottom_up.stages.norm = "BN"
    backbone.bottom_up.freeze_at = 0
    backbone.out_channels = FPN_CHANNELS


def shrink(model, *, num_classes: int) -> None:
    """Edit ``model`` (an FCOS- or RetinaNet-style LazyConfig) in place into the small variant."""
    model.num_classes = num_classes
    model.test_score_thresh = 0.05  # short runs on tiny data score low; keep their detections
    _shrink_backbone(model.backbone)
    # FCOS builds P6 from P5, RetinaNet from res5.
    from_p5 = model.backbone.top_block.get("in_feature", "res5") == "p5"
    model.backbone.top_block.in_channels = FPN_CHANNELS if from_p5 else RES5_CHANNELS
    model.head.input_shape = [ShapeSpec(channels=FPN_CHANNELS)] * 5
    if "box_tower" in model.head:  # a FAD head
        for name in ("box_tower", "cls_tower"):
            tower = model.head[name]
            if tower is not None:
                tower.in_channels = tower.op_channels = FPN_CHANNELS
                # One cell per tower, as in the search, also for training: a 2-cell tower is
                # about twice as deep as the detector's 4 convs, which costs AP when training
                # from scratch on a short budget (docs/BENCHMARKS.md). The COCO configs keep 2.
                tower.num_cells = 1
        # The original's N(0, 0.01) reduce-conv init would starve the towers of gradient for
        # much of a short run (see FADTowers' reduce_init_std).
        model.head.reduce_init_std = None
    else:
        model.head.conv_dims = [FPN_CHANNELS] * 4
    if "anchor_generator" in model:
        # Anchors of 16-256 px (RetinaNet's are 32-512) for 128-px images with 16-56 px objects.
        model.anchor_generator.sizes = [
            [x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [16, 32, 64, 128, 256]
        ]


def shrink_mask_rcnn(model, *, num_classes: int) -> None:
    """Edit a Mask R-CNN LazyConfig (detectron2's or the FAD one) in place into the small
    variant: the FPN, RoI heads and mask tower at width 64, anchors and proposal counts for
    128-px images on a CPU."""
    _shrink_backbone(model.backbone)
    rpn, roi = model.proposal_generator, model.roi_heads
    rpn.head.in_channels = FPN_CHANNELS
    rpn.anchor_generator.sizes = [[8], [16], [32], [64], [128]]  # P2-P6, objects of 16-56 px
    rpn.pre_nms_topk, rpn.post_nms_topk = (600, 300), (300, 300)
    roi.num_classes = num_classes
    roi.batch_size_per_image = 128
    roi.box_head.input_shape = ShapeSpec(channels=FPN_CHANNELS, height=7, width=7)
    roi.box_head.fc_dims = [256, 256]
    roi.box_predictor.input_shape = ShapeSpec(channels=256)
    roi.mask_head.input_shape = ShapeSpec(channels=FPN_CHANNELS, width=14, height=14)
    if "tower" in roi.mask_head:  # the FAD mask head
        roi.mask_head.tower.in_channels = roi.mask_head.tower.op_channels = FPN_CHANNELS
    else:
        roi.mask_head.conv_dims = [FPN_CHANNELS] * 5
