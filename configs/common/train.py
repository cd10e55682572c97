"""detectron2's common training options (output_dir, max_iter, checkpointer, ddp, ...), and
``cuda_graphs``."""

from detectron2.model_zoo import get_config

train = get_config("common/train.py").train
# True: on a GPU, replay the head's forward and backward from CUDA graphs
# (fad.modeling.cuda_graphs), captured per input shape: with model.fixed_canvas, a few a run.
# Off by default until benchmarks/gpu_check.py has measured it (docs/BENCHMARKS.md); a CPU runs
# eagerly and says so.
train.cuda_graphs = False
