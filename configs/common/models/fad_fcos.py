"""FCOS R-50 FPN with the FAD head, derived mode, the paper's genotypes (model only).

detectron2's own FCOS config supplies backbone, FPN (P3-P7 from P5), losses and inference.
"""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config

from fad.genotypes import FAD_PAPER_BOX, FAD_PAPER_CLS
from fad.modeling import FADFCOS, FADHead

model = get_config("common/models/fcos.py").model
model._target_ = FADFCOS
model.backbone.bottom_up.freeze_at = 2
model.head = L(FADHead)(
    input_shape=[ShapeSpec(channels=256)] * 5,
    num_classes="${..num_classes}",
    search=False,
    # Genotypes are config values (text form here; the plain-data form works too), so the run's
    # config.yaml records them and `model.head.box_genotype=...` overrides them.
    box_genotype=str(FAD_PAPER_BOX),
    cls_genotype=str(FAD_PAPER_CLS),
    op_channels=96,
    num_cells=2,
)
