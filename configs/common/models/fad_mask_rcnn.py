"""Mask R-CNN R-50 FPN with the FAD mask head (model only): detectron2's Mask R-CNN whose four
3x3 mask convs are a FAD tower on the 14x14 RoI features (docs/METHOD.md section 11).

No mask genotype is published, so the derived tower's genotype is a mandatory value: train with
``train_net.py --genotype-file`` of a mask search (``search/fad_mask_rcnn_*``).
"""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config

from fad.modeling import FADMaskHead, FADMaskRCNN

from .towers import mask_tower

model = get_config("common/models/mask_rcnn_fpn.py").model
model._target_ = FADMaskRCNN
model.backbone.bottom_up.freeze_at = 2
model.roi_heads.mask_head = L(FADMaskHead)(
    input_shape=ShapeSpec(channels=256, width=14, height=14),
    num_classes="${..num_classes}",  # 1 for class-agnostic masks
    tower=mask_tower("???"),
)
