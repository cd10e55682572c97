"""A CPU-sized search of the Mask R-CNN mask tower on the synthetic dataset with masks.

ResNet-18 FPN-64, mask tower op width 64, 128-px images; the settings of the detector-tower
synthetic search (fad_fcos_R_18_synthetic.py). For tests and the quick start.
"""

from ...common.data.synthetic_mask import dataloader
from ...common.models.fad_mask_rcnn_search import model
from ...common.models.r18_small import shrink_mask_rcnn
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.search import arch_optimizer, search
from ...common.train import train

shrink_mask_rcnn(model, num_classes=3)
optimizer.lr = 0.01
arch_optimizer.lr = 3e-3  # as in the detector-tower synthetic search: a short run decides
lr_multiplier = step_schedule(max_iter=200, step=150, warmup_iters=20)

train.max_iter = 200
train.checkpointer.period = 100
train.eval_period = 0
train.log_period = 10
train.init_checkpoint = ""
train.device = "cpu"
train.seed = 0
train.output_dir = "./output/search/fad_mask_rcnn_R_18_synthetic"
