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
    # Genotypes are config values in plain-data form (the text form works too), so the run's
    # config.yaml records them and `model.head.box_genotype=...` or one edge,
    # `model.head.box_genotype.normal.0.0=[std_conv_3x3,1]`, overrides them.
    box_genotype=FAD_PAPER_BOX.to_plain(),
    cls_genotype=FAD_PAPER_CLS.to_plain(),
    op_channels=96,
    num_cells=2,
)
