"""FAD search of the Mask R-CNN mask tower on COCO 2017: weights on one half of train2017,
alphas on the other (configs/common/data/coco_mask_search.py says how to make the halves).

Setting and budget: no mask search was published, so this one keeps what the paper's detector
search fixed and scales what COCO needs. Kept: the alpha optimizer and its 17,500 steps (Adam
3e-4: the alphas move as far as in the VOC search), the weight optimizer (SGD, clip 20), batch
4, the R-50 FPN from ImageNet with stem and res2 frozen, one search cell of three nodes. Scaled:
short side 600 (max 1000; COCO's objects are smaller than VOC's), and 256 RoIs per image for the
RoI heads instead of 512, so at most 4 x 64 foreground RoIs reach the mask tower: its search
cell at op width 256 keeps some 65 MB per RoI for the backward (counted on a CPU, float32), 17 GB
at most. lr 0.005 for batch 4 (detectron2's 0.02 at 16). The search sees 70,000 images of each
half, about 1.2 epochs; its GPU time is not measured yet.
"""

from ...common.data.coco_mask_search import dataloader
from ...common.models.fad_mask_rcnn_search import model
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.search import arch_optimizer, search
from ...common.train import train

model.roi_heads.batch_size_per_image = 256
optimizer.lr = 0.005
lr_multiplier = step_schedule(max_iter=17500, step=12500, warmup_iters=500)

train.max_iter = 17500
train.checkpointer.period = 2500
train.eval_period = 0
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/search/fad_mask_rcnn_R_50_FPN_coco"
