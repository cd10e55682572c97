"""detectron2's Mask R-CNN R-50 FPN 1x on COCO 2017 (its model zoo's LazyConfig settings): the
baseline of fad/augment/fad_mask_rcnn_R_50_FPN_1x.py, which differs only in the mask tower."""

from detectron2.model_zoo import get_config

from ..common.optim import SGD as optimizer
from ..common.train import train

_zoo = get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.py")
dataloader, model, lr_multiplier = _zoo.dataloader, _zoo.model, _zoo.lr_multiplier
model.backbone.bottom_up.freeze_at = 2
train.max_iter = 90000
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/mask_rcnn/mask_rcnn_R_50_FPN_1x"
