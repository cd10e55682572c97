#!/usr/bin/env python
"""FAD architecture search (docs/METHOD.md section 8), after detectron2's lazyconfig_train_net.

Each iteration takes an alpha step on a batch of ``dataloader.arch`` and a weight step on a batch
of ``dataloader.train``. Every ``train.checkpointer.period`` iterations and at the end it writes
``genotype.log`` (box tower line, class tower line), ``cell_{box,cls}.{dot,png}``, ``alphas.png``
(how the softmax weights of every edge moved, sampled every ``train.log_period`` iterations), a
checkpoint and TensorBoard curves under ``train.output_dir``.

    python search_net.py --config-file configs/fad/search/fad_fcos_R_50_FPN_voc.py --num-gpus 1
    python search_net.py --config-file ... --resume            # continue from the last checkpoint
    python search_net.py --config-file ... train.amp.enabled=True   # mixed precision (first order)
    python search_net.py --config-file ... --eval-only train.init_checkpoint=OUT/model_final.pth
        # writes the genotypes of a search checkpoint, genotype_<checkpoint>.log
    python search_net.py --config-file ... search.cost_weight=0.1   # weigh FLOPs (cost-aware)
"""

# First: detectron2's imports below raise deprecation warnings a user cannot act on.
import fad.quiet_imports  # noqa: F401

# isort: split
import logging
import os
from typing import Optional, Tuple

import torch
from detectron2.config import instantiate
from detectron2.engine import default_writers, hooks
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import setup_logger
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

import fad.data  # noqa: F401  (registers the synthetic datasets)
from fad.data.datasets import check_disjoint_datasets
from fad.engine import (
    AtomicCheckpointer,
    GenotypeWriter,
    SearchTrainer,
    alpha_checksum,
    amp_precision_for,
    check_warmup_iters,
)
from fad.engine.checkpoint import check_init_checkpoint, check_start_checkpoint, resume_or_load
from fad.engine.cost import (
    CostTable,
    build_cost_table,
    check_cost,
    check_cost_weight,
    cost_image_size,
)
from fad.engine.defaults import (
    argument_parser,
    build_model,
    build_model_on_meta,
    check_datasets,
    check_device,
    check_worker_options,
    create_ddp_model_for,
    launch_checked,
    load_config,
    loader_dataset_names,
    log_model,
    register_datasets,
    run_checked,
    setup_worker,
)
from fad.genotypes import check_rank, save_genotype_file
from fad.nas.architect import Architect

logger = logging.getLogger("detectron2")


def genotype_writer(cfg, cost_table: Optional[CostTable] = None) -> GenotypeWriter:
    return GenotypeWriter(
        output_dir=cfg.train.output_dir,
        period=cfg.train.checkpointer.period,
        rank=cfg.search.genotype_rank,
        history_period=cfg.train.log_period,
        cost_table=cost_table,
    )


def _warmup_iters(cfg) -> int:
    """``search.warmup_iters``, 0 in the config.yaml of a search older than the option."""
    warmup = check_warmup_iters(cfg.search.get("warmup_iters", 0), key="search.warmup_iters")
    if warmup >= cfg.train.max_iter:
        raise ValueError(
            f"search.warmup_iters ({warmup}) must be below train.max_iter ({cfg.train.max_iter}):"
            " the search would take no alpha step"
        )
    return warmup


def cost_options(cfg) -> Tuple[str, float]:
    """``search.cost`` and ``search.cost_weight``, checked (a search's config.yaml written before
    the cost-aware search existed has neither: the paper's search)."""
    cost, weight = cfg.search.get("cost", "flops"), cfg.search.get("cost_weight", 0.0)
    check_cost(cost, key="search.cost")
    check_cost_weight(weight, key="search.cost_weight")
    return cost, weight


def prepare(args):
    """Load the config and check it (once, before any worker starts)."""
    register_datasets(args)
    cfg = load_config(args)
    model = build_model_on_meta(cfg)  # the head's constructor checks towers and genotypes
    if not model.arch_parameters():
        raise ValueError("search_net.py needs a search-mode FAD model (model.head.search=True)")
    try:
        check_rank(cfg.search.genotype_rank)
    except ValueError as e:
        raise ValueError(f"search.genotype_rank: {e}") from None
    try:  # the genotype writer samples the alphas for alphas.png every log period
        genotype_writer(cfg)
    except ValueError as e:
        raise ValueError(f"train.log_period: {e}") from None
    _, cost_weight = cost_options(cfg)
    if args.eval_only:  # reads the alphas of a checkpoint, on any machine
        return cfg
    check_device(cfg)
    check_worker_options(cfg)
    check_start_checkpoint(
        output_dir=cfg.train.output_dir,
        init_checkpoint=cfg.train.init_checkpoint,
        resume=args.resume,
    )
    _warmup_iters(cfg)
    if cost_weight > 0:
        cost_image_size(cfg.dataloader.arch)  # the cost table's input size
    try:  # the architect checks the order of the alpha gradient against mixed precision
        Architect(
            arch_parameters=model.arch_parameters(),
            weight_parameters=[],
            second_order=cfg.search.second_order,
            grad_scaler=torch.amp.GradScaler("cpu", enabled=False)
            if cfg.train.amp.enabled
            else None,
        )
    except ValueError as e:
        raise ValueError(f"train.amp.enabled and search.second_order: {e}") from None
    check_datasets(cfg, ["train", "arch"])
    try:
        check_disjoint_datasets(
            loader_dataset_names(cfg.dataloader.train), loader_dataset_names(cfg.dataloader.arch)
        )
    except ValueError as e:
        raise ValueError(
            f"dataloader.train and dataloader.arch read the same datasets ({e}): the alphas "
            "must learn on held-out data"
        ) from None
    return cfg


def export_genotypes(args) -> str:
    """``--eval-only``: write the genotypes of the checkpoint ``train.init_checkpoint``.

    Only the alphas are read from the checkpoint (into the model built on the meta device), so
    this takes a moment on any machine.
    """
    cfg = prepare(args)
    path = cfg.train.init_checkpoint
    if not path:
        raise ValueError("--eval-only needs train.init_checkpoint=<a checkpoint of search_net.py>")
    check_init_checkpoint(path)
    try:
        state = torch.load(PathManager.get_local_path(path), map_location="cpu", weights_only=False)
        state = state["model"]
    except OSError:
        raise  # a missing or unreadable file: reported as it is
    except Exception as e:  # a pickle of another format, a file of another kind
        raise ValueError(f"{path} is not a checkpoint of search_net.py: {e}") from None
    consume_prefix_in_state_dict_if_present(state, "module.")
    model = build_model_on_meta(cfg)
    names = model.arch_parameter_names()
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(
            f"{path} holds no architecture weights ({', '.join(missing)} missing): --eval-only "
            "derives the genotypes of a checkpoint of search_net.py"
        )
    model.load_state_dict({n: state[n] for n in names}, strict=False, assign=True)
    box, cls = model.genotypes(rank=cfg.search.genotype_rank)
    stem = os.path.splitext(os.path.basename(path))[0]
    out = os.path.abspath(os.path.join(cfg.train.output_dir, f"genotype_{stem}.log"))
    save_genotype_file(out, box, cls)
    setup_logger(name="fad").info(f"Genotypes of {path} written to {out}:\n{box}\n{cls}")
    return out


def build_search_trainer(cfg):
    """Model, optimizers, loaders, SearchTrainer with its hooks, and the checkpointer."""
    model = build_model(cfg)
    log_model(model, cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    cfg.arch_optimizer.params.model = model
    arch_optimizer = instantiate(cfg.arch_optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    arch_loader = instantiate(cfg.dataloader.arch)

    cost, cost_weight = cost_options(cfg)
    cost_table = None  # the paper's search computes no costs
    if cost_weight > 0:
        image_size = cost_image_size(cfg.dataloader.arch)
        cost_table = build_cost_table(model=model, image_size=image_size, cost=cost)
    model = create_ddp_model_for(model, ddp=cfg.train.ddp)
    precision = None
    if cfg.train.amp.enabled:
        precision = amp_precision_for(torch.device(cfg.train.device).type)
        logger.info(f"Mixed precision: autocast to {precision}")
    trainer = SearchTrainer(
        model,
        train_loader,
        optimizer,
        arch_data_loader=arch_loader,
        arch_optimizer=arch_optimizer,
        second_order=cfg.search.second_order,
        warmup_iters=_warmup_iters(cfg),
        clip_grad_norm=cfg.search.clip_grad_norm,
        amp_precision=precision,
        cost_weight=cost_weight,
        cost_table=cost_table,
    )
    checkpointer = AtomicCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    main = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
            # On every rank: it compares the ranks' alphas before the main process writes.
            genotype_writer(cfg, cost_table),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if main
            else None,
        ]
    )
    return trainer, checkpointer


def main(args, cfg) -> None:
    setup_worker(cfg, args, loaders=["train", "arch"])
    trainer, checkpointer = build_search_trainer(cfg)
    start_iter = resume_or_load(checkpointer, cfg.train.init_checkpoint, resume=args.resume)
    if start_iter:
        alphas = trainer.unwrapped_model.arch_parameters()
        logger.info(f"Resuming at iteration {start_iter}, alpha checksum {alpha_checksum(alphas)}")
    trainer.train(start_iter, cfg.train.max_iter)


def invoke_main() -> None:
    parser = argument_parser(epilog=__doc__, genotype_file=False)
    args = parser.parse_args()
    if args.eval_only:
        run_checked(parser, export_genotypes, args)
    else:
        launch_checked(main, parser, args, prepare=prepare)


if __name__ == "__main__":
    invoke_main()
