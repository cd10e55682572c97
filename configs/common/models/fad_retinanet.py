"""RetinaNet R-50 FPN with the FAD head: the paper's genotypes, two cells per tower (model only).

detectron2's own RetinaNet config supplies backbone, FPN (P3-P7 from C5), anchors, losses and
inference; the towers are those of the FCOS one (configs/common/models/towers.py).
"""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config

from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS
from fad.modeling import FADRetinaNet, FADRetinaNetHead

from .towers import derived_tower

model = get_config("common/models/retinanet.py").model
model._target_ = FADRetinaNet
model.backbone.bottom_up.freeze_at = 2
model.head = L(FADRetinaNetHead)(
    input_shape=[ShapeSpec(channels=256)] * 5,
    num_classes="${..num_classes}",
    num_anchors=9,
    box_tower=derived_tower(FAD_PAPER_BOX),
    cls_tower=derived_tower(FAD_PAPER_CLS),
)
