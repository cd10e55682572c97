"""Train and evaluate a FAD detector on the synthetic dataset, on a CPU (tests, quick start).

ResNet-18 FPN-64 from scratch, op width 64, one cell per tower, 128-px images; the paper's
genotypes by default, or a searched pair with train_net.py --genotype-file.
"""

from ...common.data.synthetic import dataloader
from ...common.models.fad_fcos import model
from ...common.models.r18_small import shrink
from ...common.synthetic_budget import lr_multiplier, optimizer, train

shrink(model, num_classes=3)
# A few hundred iterations from scratch: the original's N(0, 0.01) reduce-conv init would starve
# the towers of gradient for much of the run (see FADHead's reduce_init_std).
model.head.reduce_init_std = None
# One cell per tower, as in the search, instead of the paper's two: a 2-cell tower is about twice
# as deep as FCOS's 4 convs, which costs AP when training from scratch on this short budget
# (docs/BENCHMARKS.md). The paper's R-50/101 and X-101 configs keep 2 cells.
model.head.num_cells = 1
train.output_dir = "./output/augment/fad_fcos_R_18_synthetic"
