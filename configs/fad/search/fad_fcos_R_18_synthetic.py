"""A CPU-sized search on the synthetic dataset: ResNet-18 FPN-64, op width 64, 128-px images.

For tests and the quick start; same procedure as the VOC search, fewer and smaller steps.
"""

from ...common.canvas import fixed_canvas
from ...common.data.synthetic import dataloader
from ...common.models.fad_fcos_search import model
from ...common.models.r18_small import shrink
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.search import arch_optimizer, search
from ...common.train import train

shrink(model, num_classes=3)
model.fixed_canvas = fixed_canvas()  # GPUs only; the images are all 128x128 anyway
optimizer.lr = 0.01
# Alphas move faster than in the 17,500-iteration VOC search so that a short run decides.
arch_optimizer.lr = 3e-3
lr_multiplier = step_schedule(max_iter=200, step=150, warmup_iters=20)

train.max_iter = 200
train.checkpointer.period = 100
train.checkpointer.max_to_keep = 1  # the last periodic checkpoint and model_final.pth
train.eval_period = 0
train.log_period = 10
train.init_checkpoint = ""
train.device = "cpu"
train.seed = 0
train.output_dir = "./output/search/fad_fcos_R_18_synthetic"
