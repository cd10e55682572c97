"""Train and evaluate a FAD detector on the synthetic dataset, on a CPU (tests, quick start).

ResNet-18 FPN-64 from scratch, op width 64, 128-px images; the paper's genotypes by default,
or a searched pair with train_net.py --genotype-file.
"""

from ...common.data.synthetic import dataloader
from ...common.models.fad_fcos import model
from ...common.models.r18_small import shrink
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.train import train

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
train.output_dir = "./output/augment/fad_fcos_R_18_synthetic"
