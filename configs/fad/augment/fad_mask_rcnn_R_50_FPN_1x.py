"""Train Mask R-CNN R-50 FPN 1x on COCO 2017 with a searched FAD mask tower.

detectron2's Mask R-CNN 1x settings (configs/mask_rcnn/mask_rcnn_R_50_FPN_1x.py, the baseline):
batch 16, lr 0.02, 90k iterations, short side 640-800; only the mask tower differs. Give the
mask search's genotype.log with train_net.py --genotype-file (no mask genotype is published).
"""

from ...common.models.fad_mask_rcnn import model
from ...mask_rcnn.mask_rcnn_R_50_FPN_1x import dataloader, lr_multiplier, optimizer, train

train.output_dir = "./output/augment/fad_mask_rcnn_R_50_FPN_1x"
