"""Shrink a FCOS/RetinaNet/FAD model config to a CPU-sized ResNet-18 FPN for short runs from
scratch on 128-px images (tests, the quick start, the synthetic benchmarks).

ResNet-18 from scratch (no weights can be downloaded in tests), BasicBlock stages with
res5 at 512 channels, a 64-wide FPN and ops. Width 32 would leave GroupNorm(32) one channel
per group, and a single value per group on the 1x1 P7 map of a 128-px image, which torch refuses.
"""

from detectron2.layers import ShapeSpec

FPN_CHANNELS = 64
RES5_CHANNELS = 512  # ResNet-18's last stage


def shrink(model, *, num_classes: int) -> None:
    """Edit ``model`` (an FCOS- or RetinaNet-style LazyConfig) in place into the small variant."""
    model.num_classes = num_classes
    model.test_score_thresh = 0.05  # short runs on tiny data score low; keep their detections
    model.backbone.bottom_up.stages.depth = 18
    del model.backbone.bottom_up.stages.stride_in_1x1
    model.backbone.bottom_up.stem.norm = "BN"
    model.backbone.bottom_up.stages.norm = "BN"
    model.backbone.bottom_up.freeze_at = 0
    model.backbone.out_channels = FPN_CHANNELS
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
