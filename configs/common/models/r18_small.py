"""Shrink a FCOS/FAD model config to a CPU-sized ResNet-18 FPN (tests and the quick start).

ResNet-18 from scratch (no weights can be downloaded in tests), BasicBlock stages with
res5 at 512 channels, a 64-wide FPN and ops. Width 32 would leave GroupNorm(32) one channel
per group, and a single value per group on the 1x1 P7 map of a 128-px image, which torch refuses.
"""

from detectron2.layers import ShapeSpec

FPN_CHANNELS = 64


def shrink(model, *, num_classes: int) -> None:
    """Edit ``model`` (a FCOS-style LazyConfig) in place into the small variant."""
    model.num_classes = num_classes
    model.test_score_thresh = 0.05  # short runs on tiny data score low; keep their detections
    model.backbone.bottom_up.stages.depth = 18
    del model.backbone.bottom_up.stages.stride_in_1x1
    model.backbone.bottom_up.stem.norm = "BN"
    model.backbone.bottom_up.stages.norm = "BN"
    model.backbone.bottom_up.freeze_at = 0
    model.backbone.out_channels = FPN_CHANNELS
    model.backbone.top_block.in_channels = FPN_CHANNELS
    model.head.input_shape = [ShapeSpec(channels=FPN_CHANNELS)] * 5
    if "op_channels" in model.head:
        model.head.op_channels = FPN_CHANNELS
    else:
        model.head.conv_dims = [FPN_CHANNELS] * 4
