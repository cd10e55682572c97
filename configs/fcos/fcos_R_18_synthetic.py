"""Plain FCOS on the synthetic dataset, same budget as fad/augment/fad_fcos_R_18_synthetic.py."""

from ..common.data.synthetic import dataloader
from ..common.models.fcos import model
from ..common.models.r18_small import shrink
from ..common.optim import SGD as optimizer
from ..common.schedule import step_schedule
from ..common.train import train

shrink(model, num_classes=3)
model.test_score_thresh = 0.05  # short runs on tiny data score low; keep their detections
optimizer.lr = 0.01
lr_multiplier = step_schedule(max_iter=300, step=240, warmup_iters=30)

train.max_iter = 300
train.checkpointer.period = 150
train.eval_period = 300
train.log_period = 20
train.init_checkpoint = ""
train.device = "cpu"
train.output_dir = "./output/fcos/fcos_R_18_synthetic"
