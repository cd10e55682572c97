"""detectron2's Mask R-CNN (four 3x3 mask convs) on the synthetic dataset with masks, with the
budget of fad/augment/fad_mask_rcnn_R_18_synthetic.py: the baseline of the FAD mask tower."""

from detectron2.model_zoo import get_config

from ..common.data.synthetic_mask import dataloader
from ..common.models.r18_small import shrink_mask_rcnn
from ..common.synthetic_budget import lr_multiplier, optimizer, train

model = get_config("common/models/mask_rcnn_fpn.py").model
shrink_mask_rcnn(model, num_classes=3)
train.output_dir = "./output/mask_rcnn/mask_rcnn_R_18_synthetic"
