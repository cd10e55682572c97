#!/usr/bin/env python
"""Cost of one FAD search iteration against one plain FCOS training iteration.

What: the search iteration is :class:`fad.engine.SearchTrainer`'s ``run_step`` (alpha step on an
"arch" batch, then the weight step on a training batch, gradient clip included), built as
``search_net.py`` builds it from ``configs/fad/search/fad_fcos_R_50_FPN_voc.py``, in first and in
second order. The reference is detectron2's ``SimpleTrainer.run_step`` (forward, backward, SGD
step) on the FCOS of ``configs/fcos/fcos_R_50_FPN_1x.py`` with 20 classes and the same backbone,
``freeze_at``, batch, image size and SGD settings (lr taken from the search config). Weights are
random (nothing can be downloaded); batches are fixed synthetic images with a few random boxes.

How: the cases are interleaved round by round (their order rotates; ``benchmarks/timing.py``),
``--warmup`` rounds are dropped and the median and IQR of ``--iters`` rounds are reported. On
CPU torch runs one thread by default (``--threads``): on a shared machine an OpenMP thread that
loses its core stalls every parallel region, which hurts the search step (many more, smaller ops
than FCOS) far more than FCOS::

    python benchmarks/bench_search_step.py                      # R-50, 2 x 416x640, CPU
    python benchmarks/bench_search_step.py --batch 1 --height 256 --width 384 --iters 5
    python benchmarks/bench_search_step.py --device cuda --batch 4 --height 416 --width 640 \\
        --iters 10 --warmup 3 --projected-iters 17500 --profile  # the published search setting

Output: per case the median seconds per iteration (and their IQR and minimum), its ratio to
FCOS, the medians of its alpha step (``arch_time``, which SearchTrainer logs) and of the rest,
the weight step, and the peak memory of one iteration run in a fresh subprocess per case: on CUDA
``torch.cuda.max_memory_allocated`` (everything the process allocated, weights included); on CPU
the growth of the resident set, peak RSS (VmHWM, reset just before the iteration) minus RSS after
the model was built (so activations, gradients and optimizer state, not the weights).
``--projected-iters N`` adds the hours N first-order iterations take (median x N / 3600), also as
the line ``search_hours_projected=<float>``. ``--cuda-graphs`` replays the FAD head from CUDA
graphs (``train.cuda_graphs=True``); on CUDA the configs' fixed canvas pads every batch (416x640
to 416x704 in the search), as the scripts do.
``--cases ... search_first_order_amp`` adds the first-order search under mixed precision, as
``search_net.py train.amp.enabled=True`` runs it (float16 on CUDA, bfloat16 on CPU), and the line
``search_step_ratio_first_order_amp=<float>`` before the last two. FCOS stays in float32:
detectron2's FCOS fails under autocast in fvcore's GIoU loss (seen here in bfloat16 on the CPU;
fvcore pull request 114 reports it for float16), which FADFCOS avoids by computing its losses
in float32.
``--cases fcos fad_train`` times a training step of FCOS with the derived FAD head of
``configs/fad/augment/fad_fcos_R_50_FPN_1x.py`` (the paper's genotypes) against FCOS's, and adds
the line ``train_step_ratio=<float>`` (FAD / FCOS) before the last two.
``--profile`` (CUDA) profiles one more iteration per case and prints its kernel launches and
busy GPU time, which tell a step bound by the host's launches from one bound by the GPU.
Results: docs/BENCHMARKS.md.
The last two lines are ``search_step_ratio_first_order=<float>`` and
``search_step_ratio_second_order=<float>``: search iteration median / FCOS iteration median
(``nan`` for a case left out of ``--cases``).
"""

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import SimpleTrainer
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from timing import TOTAL, time_interleaved
from torch.utils.benchmark import timer

from fad.engine import SearchOptions, SearchTrainer
from fad.modeling.cuda_graphs import enable_cuda_graphs

ROOT = Path(__file__).resolve().parents[1]
SEARCH_CONFIG = ROOT / "configs/fad/search/fad_fcos_R_50_FPN_voc.py"
#: The training steps: detectron2's FCOS, and FCOS with the derived FAD head (paper genotypes).
TRAINING_CONFIGS = {
    "fcos": ROOT / "configs/fcos/fcos_R_50_FPN_1x.py",
    "fad_train": ROOT / "configs/fad/augment/fad_fcos_R_50_FPN_1x.py",
}
CASES = (
    "fcos",
    "search_first_order",
    "search_second_order",
    "search_first_order_amp",
    "fad_train",
)
DEFAULT_CASES = CASES[:3]
BOXES_PER_IMAGE = 4
LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


def make_batch(
    num_images: int, height: int, width: int, *, num_classes: int, seed: int
) -> List[dict]:
    """Images with uint8 values and a few random boxes, in detectron2's dataset-mapper format."""
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([width, height], dtype=torch.float32)
    batch = []
    for _ in range(num_images):
        wh = 16 + torch.rand(BOXES_PER_IMAGE, 2, generator=g) * size / 2
        xy = torch.rand(BOXES_PER_IMAGE, 2, generator=g) * (size - wh)
        instances = Instances(
            (height, width),
            gt_boxes=Boxes(torch.cat([xy, xy + wh], dim=1)),
            gt_classes=torch.randint(num_classes, (BOXES_PER_IMAGE,), generator=g),
        )
        image = torch.randint(256, (3, height, width), generator=g).float()
        batch.append({"image": image, "instances": instances, "height": height, "width": width})
    return batch


class Case:
    """A trainer with its own EventStorage, stepped one iteration at a time."""

    def __init__(self, name: str, trainer: SimpleTrainer):
        self.name = name
        self.trainer = trainer
        trainer.storage = EventStorage(0)
        trainer.iter = 0

    def step(self) -> None:
        """Run one iteration."""
        trainer = self.trainer
        with trainer.storage:
            trainer.storage.iter = trainer.iter
            trainer.run_step()
        trainer.iter += 1

    def parts(self) -> Dict[str, float]:
        """The alpha step's seconds that SearchTrainer logged in the last iteration, as
        ``{"arch": seconds}`` (``{}`` for a training step)."""
        history = self.trainer.storage.histories().get("arch_time")
        return {"arch": history.latest()} if history is not None else {}


def build_case(
    name: str,
    *,
    device: torch.device,
    batch: int,
    height: int,
    width: int,
    foreach: Optional[bool] = None,
    cuda_graphs: bool = False,
    overrides: Sequence[str] = (),
) -> Case:
    """Model, optimizer(s) and trainer of one case, from the configs, as the scripts build them.

    ``foreach`` is passed to the optimizers (``None``: torch's default, which is the multi-tensor
    form on GPUs and the per-parameter loop on CPUs). ``cuda_graphs`` replays the FAD head from
    CUDA graphs (``train.cuda_graphs``; detectron2's FCOS stays as it is). ``overrides``
    (``key=value``, as on the scripts' command lines) apply to the FAD configs, not to FCOS's.
    """
    search_cfg = LazyConfig.apply_overrides(LazyConfig.load(str(SEARCH_CONFIG)), overrides)
    num_classes = search_cfg.model.num_classes
    train_batch = make_batch(batch, height, width, num_classes=num_classes, seed=1)
    torch.manual_seed(0)
    if name in TRAINING_CONFIGS:
        cfg = LazyConfig.load(str(TRAINING_CONFIGS[name]))
        if name != "fcos":
            cfg = LazyConfig.apply_overrides(cfg, overrides)
        cfg.model.num_classes = num_classes
        freeze_at = search_cfg.model.backbone.bottom_up.freeze_at
        if cfg.model.backbone.bottom_up.freeze_at != freeze_at:
            raise ValueError(f"the {name} and search configs freeze different backbone stages")
        cfg.optimizer.lr = search_cfg.optimizer.lr
        cfg.optimizer.foreach = foreach
        model = instantiate(cfg.model).to(device)
        if cuda_graphs and name != "fcos":
            enable_cuda_graphs(model)
        cfg.optimizer.params.model = model
        trainer = SimpleTrainer(model, itertools.repeat(train_batch), instantiate(cfg.optimizer))
        return Case(name, trainer)
    cfg = search_cfg
    model = instantiate(cfg.model).to(device)
    if cuda_graphs:
        enable_cuda_graphs(model)
    cfg.optimizer.params.model = model
    cfg.arch_optimizer.params.model = model
    cfg.optimizer.foreach = cfg.arch_optimizer.foreach = foreach
    arch_batch = make_batch(batch, height, width, num_classes=num_classes, seed=2)
    trainer = SearchTrainer(
        model,
        itertools.repeat(train_batch),
        instantiate(cfg.optimizer),
        arch_data_loader=itertools.repeat(arch_batch),
        arch_optimizer=instantiate(cfg.arch_optimizer),
        options=SearchOptions(
            second_order=name == "search_second_order",
            clip_grad_norm=cfg.search.clip_grad_norm,
            amp=name.endswith("_amp"),
        ),
    )
    return Case(name, trainer)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def probe_memory(args: argparse.Namespace) -> Dict[str, float]:
    """Peak memory (MiB) of the first iteration of one case, in this (fresh) process."""
    device = torch.device(args.device)
    case = build_case(
        args.memory_probe,
        device=device,
        batch=args.batch,
        height=args.height,
        width=args.width,
        cuda_graphs=args.cuda_graphs,
        overrides=args.set,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM, the peak resident set size, to the current RSS
        rss_before = _proc_status_kib("VmRSS")
    case.step()
    if device.type == "cuda":
        return {"peak_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    return {"peak_mib": (_proc_status_kib("VmHWM") - rss_before) / 1024}


def measure_memory(args: argparse.Namespace, name: str) -> float:
    """Run :func:`probe_memory` for one case in a subprocess; return its peak in MiB."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--memory-probe={name}",
        f"--device={args.device}",
        f"--batch={args.batch}",
        f"--height={args.height}",
        f"--width={args.width}",
        f"--threads={args.threads}",
    ] + (["--cuda-graphs"] if args.cuda_graphs else [])
    cmd += ["--set", *args.set] if args.set else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def profile_launches(case: Case) -> Dict[str, float]:
    """Kernel launches and busy GPU time of one iteration of ``case``, from torch.profiler.

    On CUDA a step of many small ops is bound by the host launching kernels, not by the GPU
    running them: the ratio of ``gpu_ms`` to the step's wall time says how idle the GPU was.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = timer()
        case.step()
        wall = timer() - start
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in LAUNCH_CALLS)
    # Kernels only: operator rows carry their kernels' time too (as torch's own table counts).
    kernels = [e for e in events if e.device_type == DeviceType.CUDA and not e.is_user_annotation]
    gpu_ms = sum(e.self_device_time_total for e in kernels) / 1e3
    return {"launches": launches, "gpu_ms": gpu_ms, "wall_ms": wall * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=2, help="images per batch")
    parser.add_argument("--height", type=int, default=416)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--iters", type=int, default=3, help="timed rounds (one step per case)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(DEFAULT_CASES))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="CUDA: also profile one more iteration per case (kernel launches, busy GPU time)",
    )
    parser.add_argument(
        "--projected-iters",
        type=int,
        help="also print the hours this many first-order search iterations take",
    )
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay the FAD head from CUDA graphs (train.cuda_graphs=True; CUDA only)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for the FAD cases, e.g. model.head.box_tower.op_channels=64",
    )
    parser.add_argument("--memory-probe", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.profile or args.cuda_graphs) and args.device != "cuda":
        parser.error("--profile and --cuda-graphs need --device cuda")
    if args.projected_iters and "search_first_order" not in args.cases:
        parser.error("--projected-iters needs the search_first_order case")
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(probe_memory(args)))
        return

    device = torch.device(args.device)
    names = [c for c in CASES if c in args.cases]
    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"batch={args.batch} image={args.height}x{args.width} iters={args.iters} "
        f"warmup={args.warmup}"
    )
    cases = [
        build_case(
            n,
            device=device,
            batch=args.batch,
            height=args.height,
            width=args.width,
            cuda_graphs=args.cuda_graphs,
            overrides=args.set,
        )
        for n in names
    ]
    times = time_interleaved(
        {c.name: c.step for c in cases},
        rounds=args.iters,
        warmup=args.warmup,
        parts={c.name: c.parts for c in cases},
    )
    if args.profile:
        for case in cases:
            p = profile_launches(case)
            print(
                f"profile {case.name}: {p['launches']:.0f} kernel launches, GPU busy "
                f"{p['gpu_ms']:.0f} ms of a {p['wall_ms']:.0f} ms step (under the profiler)"
            )
    del cases
    memory = {n: float("nan") if args.no_memory else measure_memory(args, n) for n in names}

    median = {name: t[TOTAL].median for name, t in times.items()}
    fcos = median.get("fcos", float("nan"))
    unit = "peak alloc MiB" if device.type == "cuda" else "peak RSS growth MiB"
    print(
        f"| case | median s/iter | IQR s | min s/iter | ratio to FCOS | alpha step s "
        f"| weight step s | {unit} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        total, arch = times[name][TOTAL], times[name].get("arch")
        split = "- | -"
        if arch is not None:  # the weight step: the rest of each iteration
            weight = statistics.median(t - a for t, a in zip(total.times, arch.times))
            split = f"{arch.median:.3f} | {weight:.3f}"
        print(
            f"| {name} | {total.median:.3f} | {total.iqr:.3f} | {min(total.times):.3f} "
            f"| {total.median / fcos:.2f} | {split} | {memory[name]:.0f} |"
        )
    if args.projected_iters:
        seconds = median["search_first_order"]
        hours = seconds * args.projected_iters / 3600
        print(
            f"projected first-order search: {args.projected_iters} iterations x {seconds:.3f} s "
            f"= {hours:.2f} h on {args.device} (batch {args.batch}, {args.height}x{args.width})"
        )
        print(f"search_hours_projected={hours:.3f}")

    def ratio(name: str) -> float:
        return median.get(name, float("nan")) / fcos

    if "fad_train" in median:
        print(f"train_step_ratio={ratio('fad_train'):.4f}")
    if "search_first_order_amp" in median:
        print(f"search_step_ratio_first_order_amp={ratio('search_first_order_amp'):.4f}")
    print(f"search_step_ratio_first_order={ratio('search_first_order'):.4f}")
    print(f"search_step_ratio_second_order={ratio('search_second_order'):.4f}")


if __name__ == "__main__":
    main()
