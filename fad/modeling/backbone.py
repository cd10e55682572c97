"""Backbone pieces the LazyConfig files need and detectron2 does not offer as a one-liner."""

from typing import List

from detectron2.modeling.backbone import BottleneckBlock, ResNet


def make_resnext_stages(
    *,
    depth: int,
    num_groups: int,
    width_per_group: int,
    norm: str = "FrozenBN",
    stride_in_1x1: bool = False,
) -> List[list]:
    """Stages of a ResNeXt, e.g. X-101-64x4d (``ResNet.make_default_stages`` builds ResNets only:
    its bottleneck width is a quarter of the output, not groups x width per group).

    Args:
        depth: 50, 101 or 152.
        num_groups, width_per_group: cardinality and res2's bottleneck width per group (64 and 4
            for X-101-64x4d); the width doubles per stage.
        norm: normalization of the blocks.
        stride_in_1x1: stride in the 1x1 conv (MSRA) or the 3x3 conv (FAIR models, ``False``).

    Returns:
        The ``stages`` argument of :class:`detectron2.modeling.backbone.ResNet`.
    """
    blocks = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[depth]
    return [
        ResNet.make_stage(
            block_class=BottleneckBlock,
            num_blocks=n,
            stride_per_block=[1 if i == 0 else 2] + [1] * (n - 1),
            in_channels=64 if i == 0 else 128 * 2**i,
            out_channels=256 * 2**i,
            bottleneck_channels=num_groups * width_per_group * 2**i,
            num_groups=num_groups,
            norm=norm,
            stride_in_1x1=stride_in_1x1,
        )
        for i, n in enumerate(blocks)
    ]
