"""Search options and the architecture-weight optimizer (docs/METHOD.md section 8)."""

import torch
from detectron2.config import LazyCall as L

from fad.engine.solver import get_arch_optimizer_params

# Adam on the alphas; `params.model` is set to the model by search_net.py.
arch_optimizer = L(torch.optim.Adam)(
    params=L(get_arch_optimizer_params)(),
    lr=3e-4,
    betas=(0.5, 0.999),
    weight_decay=1e-3,
)

search = dict(
    second_order=False,  # DARTS first-order by default; True for the unrolled gradient
    warmup_iters=0,  # iterations of weight steps only before the first alpha step (the paper: 0)
    clip_grad_norm=20.0,  # gradient-norm clip on the weights
    genotype_rank="softmax",  # "raw" ranks raw alphas, as the original code did
    # Beyond the paper (fad/engine/cost.py): > 0 adds cost_weight x the towers' expected cost of
    # "flops" or "latency" (on the search's device) to the alpha step's loss; 0 is the paper's.
    cost_weight=0.0,
    cost="flops",
    # How the final genotypes are chosen: "alpha", the paper's (the strongest alphas), or
    # "perturbation" (DARTS-PT, Wang et al. ICLR 2021: the candidates and edges whose removal
    # raises the supernet's validation loss most), measured on selection_batches arch batches
    # per rank, with selection_tune_iters weight steps after each decision (0: none).
    selection="alpha",
    selection_batches=8,
    selection_tune_iters=0,
)
