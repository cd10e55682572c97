"""FAD search on VOC 2012, the published setting (docs/METHOD.md section 8).

R-50 FPN (ImageNet-pretrained, stem and res2 frozen), short side 416, batch 4, 17,500 iterations;
weights: SGD lr 0.004, x0.1 at 12,500, clip 20; alphas: Adam 3e-4, betas (0.5, 0.999), wd 1e-3.
Genotypes are written every 2,500 iterations and at the end.
"""

from ...common.canvas import fixed_canvas
from ...common.data.voc_search import dataloader
from ...common.models.fad_fcos_search import model
from ...common.optim import SGD as optimizer
from ...common.schedule import step_schedule
from ...common.search import arch_optimizer, search
from ...common.train import train

model.num_classes = 20
# On GPUs, every batch padded to 416x704 (704x416 portrait): fixed shapes for CUDA graphs, for
# about 9% more pixels than detectron2's padding (docs/BENCHMARKS.md).
model.fixed_canvas = fixed_canvas()
optimizer.lr = 0.004
lr_multiplier = step_schedule(max_iter=17500, step=12500, warmup_iters=500)

train.max_iter = 17500
train.checkpointer.period = 2500
train.eval_period = 0
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "./output/search/fad_fcos_R_50_FPN_voc"
