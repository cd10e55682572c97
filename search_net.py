#!/usr/bin/env python
"""FAD architecture search (docs/METHOD.md section 8), after detectron2's lazyconfig_train_net.

Each iteration takes an alpha step on a batch of ``dataloader.arch`` and a weight step on a batch
of ``dataloader.train``. Every ``train.checkpointer.period`` iterations and at the end it writes
``genotype.log`` (box tower line, class tower line), ``cell_{box,cls}.{dot,png}``, a checkpoint
and TensorBoard curves under ``train.output_dir``.

    python search_net.py --config-file configs/fad/search/fad_fcos_R_50_FPN_voc.py --num-gpus 1
    python search_net.py --config-file ... --resume            # continue from the last checkpoint
    python search_net.py --config-file ... train.amp.enabled=True   # mixed precision (first order)
    python search_net.py --config-file ... --eval-only train.init_checkpoint=OUT/model_final.pth
        # writes the genotypes of a search checkpoint, genotype_<checkpoint>.log
"""

import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.engine import default_setup, default_writers, hooks
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import setup_logger

from fad.data import check_disjoint_datasets  # importing fad.data registers synthetic data
from fad.engine import (
    AtomicCheckpointer,
    GenotypeWriter,
    SearchTrainer,
    alpha_checksum,
    amp_precision_for,
)
from fad.engine.defaults import (
    create_ddp_model_for,
    fad_argument_parser,
    launch_checked,
    load_config,
    loader_dataset_names,
)
from fad.genotypes import check_rank, save_genotype_file

logger = logging.getLogger("detectron2")


def build_search_model(cfg, *, device: str = "cpu"):
    model = instantiate(cfg.model)
    if not getattr(model, "search", False):
        raise ValueError("search_net.py needs a search-mode FAD model (model.head.search=True)")
    return model.to(device)


def export_genotypes(cfg) -> str:
    """Write the genotypes of the checkpoint ``train.init_checkpoint`` beside the run's files."""
    model = build_search_model(cfg, device=cfg.train.device)
    DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    box, cls = model.genotypes(rank=cfg.search.genotype_rank)
    stem = os.path.splitext(os.path.basename(cfg.train.init_checkpoint))[0]
    path = os.path.join(cfg.train.output_dir, f"genotype_{stem}.log")
    save_genotype_file(path, box, cls)
    logger.info(f"Genotypes of {cfg.train.init_checkpoint} written to {path}:\n{box}\n{cls}")
    return path


def build_search_trainer(cfg):
    """Model, optimizers, loaders, SearchTrainer with its hooks, and the checkpointer."""
    model = build_search_model(cfg, device=cfg.train.device)
    logger.info(f"Model:\n{model}")
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    cfg.arch_optimizer.params.model = model
    arch_optimizer = instantiate(cfg.arch_optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    arch_loader = instantiate(cfg.dataloader.arch)

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
        clip_grad_norm=cfg.search.clip_grad_norm,
        amp_precision=precision,
    )
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
                rank=cfg.search.genotype_rank,
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


def do_search(args, cfg) -> None:
    trainer, checkpointer = build_search_trainer(cfg)
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    if args.resume and checkpointer.has_checkpoint():
        # A checkpoint stores the iteration that just finished: continue at the next one.
        start_iter = trainer.iter + 1
        alphas = trainer.unwrapped_model.arch_parameters()
        logger.info(f"Resuming at iteration {start_iter}, alpha checksum {alpha_checksum(alphas)}")
    else:
        start_iter = 0
    trainer.train(start_iter, cfg.train.max_iter)


def check_search_checkpoint(cfg) -> None:
    """Refuse an ``--eval-only`` checkpoint without the model's architecture weights.

    detectron2's checkpointer would load it with a warning (or, for an empty path, start from
    scratch), and the genotypes would be derived from the random initial alphas.
    """
    path = cfg.train.init_checkpoint
    if not path:
        raise ValueError("--eval-only needs train.init_checkpoint=<a checkpoint of search_net.py>")
    local = PathManager.get_local_path(path)
    if not os.path.isfile(local):
        raise FileNotFoundError(f"train.init_checkpoint {path} does not exist")
    try:
        state = torch.load(local, map_location="cpu", weights_only=False)["model"]
    except Exception as e:  # a pickle of another format, a file of another kind
        raise ValueError(f"{path} is not a checkpoint of search_net.py: {e}") from None
    keys = {k.removeprefix("module.") for k in state}
    missing = [n for n in build_search_model(cfg).arch_parameter_names() if n not in keys]
    if missing:
        raise ValueError(
            f"{path} holds no architecture weights ({', '.join(missing)} missing): --eval-only "
            "derives the genotypes of a checkpoint of search_net.py"
        )


def check(args):
    cfg = load_config(args, loaders=[] if args.eval_only else ["train", "arch"])
    check_rank(cfg.search.genotype_rank, key="search.genotype_rank")
    if args.eval_only:
        check_search_checkpoint(cfg)
        return cfg
    try:
        check_disjoint_datasets(
            loader_dataset_names(cfg.dataloader.train), loader_dataset_names(cfg.dataloader.arch)
        )
    except ValueError as e:
        raise ValueError(
            f"dataloader.train and dataloader.arch read the same datasets ({e}): the alphas "
            "must learn on held-out data"
        ) from None
    if cfg.train.amp.enabled and cfg.search.second_order:
        raise ValueError(
            "train.amp.enabled=True needs the first-order search (search.second_order=False)"
        )
    return cfg


def main(args) -> None:
    cfg = check(args)
    default_setup(cfg, args)
    # default_setup logs detectron2 and fvcore; the fad.* modules log into the same log.txt.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="fad")
    if args.eval_only:
        export_genotypes(cfg)
    else:
        do_search(args, cfg)


def invoke_main() -> None:
    parser = fad_argument_parser(epilog=__doc__, genotype_file=False)
    args = parser.parse_args()
    launch_checked(main, args, check=check)


if __name__ == "__main__":
    invoke_main()
