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
    python search_net.py --config-file ... search.selection=perturbation
        # the final genotypes by perturbation (DARTS-PT), also with --eval-only (and --num-gpus)
    python search_net.py --config-file ... search.cost_weight=0.1   # weigh FLOPs (cost-aware)
"""

# First: detectron2's imports below raise deprecation warnings a user cannot act on.
import fad.quiet_imports  # noqa: F401

# isort: split
import logging
import os

import torch
from detectron2.config import instantiate
from detectron2.engine import default_writers, hooks
from detectron2.utils import comm
from detectron2.utils.events import EventStorage
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import setup_logger
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

import fad.data  # noqa: F401  (registers the synthetic datasets)
from fad.data.datasets import check_disjoint_datasets
from fad.engine import (
    AtomicCheckpointer,
    GenotypeWriter,
    SearchOptions,
    SearchTrainer,
    alpha_checksum,
)
from fad.engine.checkpoint import check_init_checkpoint, check_start_checkpoint, resume_or_load
from fad.engine.cost import build_cost_table, cost_image_size
from fad.engine.defaults import (
    argument_parser,
    build_model,
    build_model_on_meta,
    check_datasets,
    check_train_options,
    create_ddp_model_for,
    launch_checked,
    load_config,
    loader_dataset_names,
    register_datasets,
    run_checked,
    setup_worker,
)
from fad.genotypes import save_genotype_file

logger = logging.getLogger("detectron2")


def prepare(args):
    """Load the config and check it (once, before any worker starts)."""
    register_datasets(args)
    cfg = load_config(args)
    model = build_model_on_meta(cfg)  # the head's constructor checks towers and genotypes
    if not model.arch_parameters():
        raise ValueError("search_net.py needs a FAD model whose head holds search towers")
    options = SearchOptions.from_config(cfg)
    if args.eval_only:
        if not cfg.train.init_checkpoint:
            raise ValueError(
                "--eval-only needs train.init_checkpoint=<a checkpoint of search_net.py>"
            )
        check_init_checkpoint(cfg.train.init_checkpoint)
        if options.selection == "alpha":  # the alphas of the checkpoint suffice, on any machine
            return cfg
    check_train_options(cfg)
    if args.eval_only:  # the perturbation selection runs the supernet on the arch loader
        check_datasets(cfg, ["train", "arch"] if options.selection_tune_iters else ["arch"])
        return cfg
    check_start_checkpoint(
        output_dir=cfg.train.output_dir,
        init_checkpoint=cfg.train.init_checkpoint,
        resume=args.resume,
    )
    if options.warmup_iters >= cfg.train.max_iter:
        raise ValueError(
            f"search.warmup_iters ({options.warmup_iters}) must be below train.max_iter "
            f"({cfg.train.max_iter}): the search would take no alpha step"
        )
    if options.cost_weight > 0:
        if "head" not in cfg.model:
            raise ValueError(
                "search.cost_weight: the cost-aware search weighs the towers of a dense "
                "detector's head (FCOS, RetinaNet) on the FPN levels; set it to 0 for this model"
            )
        cost_image_size(cfg.dataloader.arch)  # the cost table's input size
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


def genotype_file(cfg) -> str:
    """``--eval-only``'s output: ``genotype_<checkpoint>.log`` in ``train.output_dir``."""
    stem = os.path.splitext(os.path.basename(cfg.train.init_checkpoint))[0]
    return os.path.abspath(os.path.join(cfg.train.output_dir, f"genotype_{stem}.log"))


def write_genotypes(cfg, genotypes) -> None:
    out = genotype_file(cfg)
    save_genotype_file(out, genotypes)
    lines = "\n".join(f"{name}: {g}" for name, g in genotypes.items())
    logging.getLogger("fad").info(
        f"Genotypes of {cfg.train.init_checkpoint} written to {out}:\n{lines}"
    )


def export_genotypes(args) -> None:
    """``--eval-only`` with ``search.selection="alpha"``: write the genotypes of the checkpoint
    ``train.init_checkpoint``.

    Only the alphas are read from the checkpoint (into the model built on the meta device), so
    this takes a moment on any machine.
    """
    cfg = prepare(args)
    setup_logger(name="fad")  # no worker to set it up
    path = cfg.train.init_checkpoint
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
    write_genotypes(cfg, model.genotypes(rank=cfg.search.genotype_rank))


def perturbation_selected(args) -> bool:
    """Whether the config selects the final genotypes by perturbation (which needs workers)."""
    return SearchOptions.from_config(load_config(args)).selection == "perturbation"


def build_search_trainer(cfg):
    """Model, optimizers, loaders, SearchTrainer with its hooks, and the checkpointer."""
    model = build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    cfg.arch_optimizer.params.model = model
    arch_optimizer = instantiate(cfg.arch_optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    arch_loader = instantiate(cfg.dataloader.arch)

    options = SearchOptions.from_config(cfg)
    cost_table = None  # the paper's search computes no costs
    if options.cost_weight > 0:
        image_size = cost_image_size(cfg.dataloader.arch)
        cost_table = build_cost_table(model=model, image_size=image_size, cost=options.cost)
    model = create_ddp_model_for(model, ddp=cfg.train.ddp)
    trainer = SearchTrainer(
        model,
        train_loader,
        optimizer,
        arch_data_loader=arch_loader,
        arch_optimizer=arch_optimizer,
        options=options,
        cost_table=cost_table,
    )
    if options.amp:
        logger.info(f"Mixed precision: autocast to {trainer.precision}")
    checkpointer = AtomicCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    main = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
            # On every rank: it compares the ranks' alphas before the main process writes.
            GenotypeWriter(
                output_dir=cfg.train.output_dir,
                period=cfg.train.checkpointer.period,
                options=options,
                cost_table=cost_table,
            ),
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
    if args.eval_only:  # the perturbation selection of a checkpoint: its weights and alphas
        checkpointer.load(cfg.train.init_checkpoint, checkpointables=[])
        with EventStorage():  # the selection's fine-tuning steps log their losses
            genotypes = trainer.genotypes()
        if comm.is_main_process():
            write_genotypes(cfg, genotypes)
        return
    start_iter = resume_or_load(checkpointer, cfg.train.init_checkpoint, resume=args.resume)
    if start_iter:
        alphas = trainer.unwrapped_model.arch_parameters()
        logger.info(f"Resuming at iteration {start_iter}, alpha checksum {alpha_checksum(alphas)}")
    trainer.train(start_iter, cfg.train.max_iter)


def invoke_main() -> None:
    parser = argument_parser(epilog=__doc__, genotype_file=False)
    args = parser.parse_args()
    if args.eval_only and not run_checked(parser, perturbation_selected, args):
        run_checked(parser, export_genotypes, args)
    else:
        launch_checked(main, parser, args, prepare=prepare)


if __name__ == "__main__":
    invoke_main()
