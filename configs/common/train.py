"""detectron2's common training options (output_dir, max_iter, checkpointer, ddp, ...), and
``cuda_graphs``, ``cpu_threads`` and ``log_config_and_model``."""

from detectron2.model_zoo import get_config

train = get_config("common/train.py").train
# True: on a GPU, replay the head's forward and backward from CUDA graphs
# (fad.modeling.cuda_graphs), captured per input shape: with model.fixed_canvas, a few a run.
# Off by default until benchmarks/gpu_check.py has measured it (docs/BENCHMARKS.md); a CPU runs
# eagerly and says so.
train.cuda_graphs = False
# Intra-op threads of each process of a run on train.device=cpu (torch.set_num_threads), at most
# the process's share of the cores less its data-loader workers; None: PyTorch's default
# (OMP_NUM_THREADS, or all cores). 1: with more, OpenMP's threads wait for each other whenever
# another job holds a core, and a quick-start search on 2 shared cores stalled (README, issue 25).
train.cpu_threads = 1
# True: log.txt also holds the config file and the printed model (the full config is always in
# the run's config.yaml; without it the model is one line: class and parameter count).
train.log_config_and_model = False
# Periodic checkpoints (model_<iter>.pth, every train.checkpointer.period iterations) keep the
# latest train.checkpointer.max_to_keep (detectron2's 100); model_final.pth is always kept.
