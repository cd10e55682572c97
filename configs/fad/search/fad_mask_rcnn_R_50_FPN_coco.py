"""FAD search of the Mask R-CNN mask tower on COCO 2017: weights on one half of train2017,
alphas on the other (configs/common/data/coco_mask_search.py says how to make the halves).

Setting and budget: no mask search was published, so this one keeps what the paper's detector
search fixed and scales what COCO needs. Kept: the alpha optimizer and its 17,500 steps (Adam
3e-4: the alphas move as far as in the VOC search), the weight optimizer (SGD, clip 20), the
R-50 FPN from ImageNet with stem and res2 frozen, one search cell of three nodes. Scaled: batch
8 and short side 600 (COCO's objects are smaller than VOC's, and a mask head learns from its
foreground RoIs only, 2-3 times fewer per image than a box head's), so the search sees 140k
images of each half, about 2.4 epochs; lr 0.01 for batch 8 (detectron2's 0.02 at 16). At about
twice the VOC search's cost per step this is some 10-14 GPU-hours on one H100 (not measured).
"""

from ...common.data.coco_mask_search import dataloader
from ...common.models.fad_mask_rcnn_search import model
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.search import arch_optimizer, search
from ...common.train import train

optimizer.lr = 0.01
lr_multiplier = step_schedule(max_iter=17500, step=12500, warmup_iters=500)

train.max_iter = 17500
train.checkpointer.period = 2500
train.eval_period = 0
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/search/fad_mask_rcnn_R_50_FPN_coco"
