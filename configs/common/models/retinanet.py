"""detectron2's RetinaNet R-50 FPN, as the baseline the FAD towers replace (model only)."""

from detectron2.model_zoo import get_config

model = get_config("common/models/retinanet.py").model
model.backbone.bottom_up.freeze_at = 2
