"""A FAD mask head for Mask R-CNN: the paper's "Beyond" (docs/METHOD.md section 11)."""

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec
from detectron2.modeling.roi_heads import BaseMaskRCNNHead
from torch import nn

from fad.nas.cell_base import Tower

from .fad_head import check_tower

__all__ = ["FADMaskHead"]


class FADMaskHead(BaseMaskRCNNHead):
    """``MaskRCNNConvUpsampleHead`` with a FAD tower in place of its four 3x3 convs: the tower,
    a 1x1 ``mask_reduce`` conv from its concatenated nodes back to the RoI width, then
    detectron2's 2x2 deconv, ReLU and 1x1 predictor.

    Args:
        input_shape: the pooled RoI features (256 channels, 14x14 in Mask R-CNN R-50 FPN).
        tower: a FAD tower (search or derived) whose inputs have the RoI width; both its inputs
            are the RoI feature.
        num_classes: foreground classes; 1 for class-agnostic masks.
        kwargs: ``loss_weight`` and ``vis_period``, see detectron2's ``BaseMaskRCNNHead``.
    """

    def __init__(self, *, input_shape: ShapeSpec, tower: Tower, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        c = input_shape.channels
        check_tower(tower, name="mask tower", channels=c, source="the RoI feature")
        self.tower = tower
        self.mask_reduce = Conv2d(tower.out_channels, c, kernel_size=1)
        self.deconv = ConvTranspose2d(c, c, kernel_size=2, stride=2)
        self.predictor = Conv2d(c, num_classes, kernel_size=1)
        # As MaskRCNNConvUpsampleHead's; the tower keeps PyTorch's init, as the detector towers.
        for layer in (self.mask_reduce, self.deconv):
            weight_init.c2_msra_fill(layer)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.constant_(self.predictor.bias, 0)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (R, C, 14, 14) RoI features.

        Returns:
            (R, num_classes, 28, 28) mask logits.
        """
        return self.predictor(torch.relu(self.deconv(self.mask_reduce(self.tower(x)))))
