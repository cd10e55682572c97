"""The training budget of the synthetic FAD and FCOS configs, defined once so that the FAD
detector and the FCOS baseline always train with the same iterations, schedule and batch."""

from .optim import SGD as optimizer
from .schedule import step_schedule
from .train import train

optimizer.lr = 0.01
lr_multiplier = step_schedule(max_iter=300, step=240, warmup_iters=30)

train.max_iter = 300
train.checkpointer.period = 150
train.checkpointer.max_to_keep = 1  # the last periodic checkpoint and model_final.pth
train.eval_period = 300
train.log_period = 20
train.init_checkpoint = ""
train.device = "cpu"
train.seed = 0  # short runs vary with the seed by several AP points; fix it for comparisons
