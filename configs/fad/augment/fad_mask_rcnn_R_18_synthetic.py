"""Train and evaluate Mask R-CNN with a searched FAD mask tower on the synthetic dataset with
masks, on a CPU: ResNet-18 FPN-64 from scratch, the budget of the synthetic detector configs.

Give the mask search's genotype.log with train_net.py --genotype-file; COCO box and mask AP at
the end. configs/mask_rcnn/mask_rcnn_R_18_synthetic.py is detectron2's mask head, same budget.
"""

from ...common.data.synthetic_mask import dataloader
from ...common.models.fad_mask_rcnn import model
from ...common.models.r18_small import shrink_mask_rcnn
from ...common.synthetic_budget import lr_multiplier, optimizer, train

shrink_mask_rcnn(model, num_classes=3)
train.output_dir = "./output/augment/fad_mask_rcnn_R_18_synthetic"
