"""FCOS R-50 FPN with the FAD head: the paper's genotypes, two cells per tower (model only).

detectron2's own FCOS config supplies backbone, FPN (P3-P7 from P5), losses and inference.
"""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config

from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS
from fad.modeling import FADFCOS, FADHead

from .towers import derived_tower

model = get_config("common/models/fcos.py").model
model._target_ = FADFCOS
model.backbone.bottom_up.freeze_at = 2
model.head = L(FADHead)(
    input_shape=[ShapeSpec(channels=256)] * 5,
    num_classes="${..num_classes}",
    box_tower=derived_tower(FAD_PAPER_BOX),
    cls_tower=derived_tower(FAD_PAPER_CLS),
)
