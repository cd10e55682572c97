"""Train and evaluate a FAD detector on the synthetic dataset, on a CPU (tests, quick start).

ResNet-18 FPN-64 from scratch, op width 64, one cell per tower, 128-px images; the paper's
genotypes by default, or a searched pair with train_net.py --genotype-file.
"""

from ...common.canvas import fixed_canvas
from ...common.data.synthetic import dataloader
from ...common.models.fad_fcos import model
from ...common.models.r18_small import shrink
from ...common.synthetic_budget import lr_multiplier, optimizer, train

shrink(model, num_classes=3)
model.fixed_canvas = fixed_canvas()  # GPUs only; the images are all 128x128 anyway
train.output_dir = "./output/augment/fad_fcos_R_18_synthetic"
