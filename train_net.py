#!/usr/bin/env python
r"""Train and evaluate a detector with searched towers, after detectron2's lazyconfig_train_net.

    python train_net.py --config-file configs/fad/augment/fad_fcos_R_50_FPN_1x.py --num-gpus 8 \
        --genotype-file output/search/fad_fcos_R_50_FPN_voc/genotype.log
    python train_net.py --config-file OUTPUT/config.yaml --eval-only \
        train.init_checkpoint=OUTPUT/model_final.pth

The run's config.yaml records the genotypes, so it rebuilds the same model. Evaluating from a
run's own config.yaml writes into OUTPUT/eval, so that config.yaml stays as it is.
"""

# First: detectron2's imports below raise deprecation warnings a user cannot act on.
import fad.quiet_imports  # noqa: F401

# isort: split
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

import fad.data  # noqa: F401  (registers the synthetic datasets)
from fad.engine import AtomicCheckpointer
from fad.engine.checkpoint import check_init_checkpoint, check_start_checkpoint, resume_or_load
from fad.engine.defaults import (
    argument_parser,
    build_model,
    build_model_on_meta,
    check_datasets,
    check_train_options,
    create_ddp_model_for,
    launch_checked,
    load_config,
    register_datasets,
    setup_worker,
)

logger = logging.getLogger("detectron2")


def do_test(cfg, model):
    if "evaluator" in cfg.dataloader:
        ret = inference_on_dataset(
            model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
        )
        print_csv_format(ret)
        return ret
    return None


def do_train(args, cfg) -> None:
    model = build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    model = create_ddp_model_for(model, ddp=cfg.train.ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(
        model, train_loader, optimizer
    )
    checkpointer = AtomicCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    main = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if main
            else None,
        ]
    )
    start_iter = resume_or_load(checkpointer, cfg.train.init_checkpoint, resume=args.resume)
    trainer.train(start_iter, cfg.train.max_iter)


def prepare(args):
    """Load the config and check it (once, before any worker starts)."""
    register_datasets(args)
    cfg = load_config(args)
    check_train_options(cfg)
    build_model_on_meta(cfg)  # the head's constructor checks towers and genotypes
    check_datasets(cfg, ["test"] if args.eval_only else ["train", "test"])
    if args.eval_only:
        check_init_checkpoint(cfg.train.init_checkpoint)
        run_config = os.path.join(cfg.train.output_dir, "config.yaml")
        if os.path.exists(run_config) and os.path.samefile(args.config_file, run_config):
            # detectron2's default_setup would write the evaluation's config over the run's.
            cfg.train.output_dir = os.path.join(cfg.train.output_dir, "eval")
    else:
        if cfg.train.amp.enabled and torch.device(cfg.train.device).type != "cuda":
            raise ValueError(
                f"train.amp.enabled=True needs a CUDA train.device, not {cfg.train.device!r}: "
                "detectron2's AMPTrainer trains in float16 on GPUs only"
            )
        check_start_checkpoint(
            output_dir=cfg.train.output_dir,
            init_checkpoint=cfg.train.init_checkpoint,
            resume=args.resume,
        )
    return cfg


def main(args, cfg) -> None:
    setup_worker(cfg, args, loaders=["test"] if args.eval_only else ["train"])
    if args.eval_only:
        model = build_model(cfg)
        model = create_ddp_model_for(model)
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        print(do_test(cfg, model))
    else:
        do_train(args, cfg)


def invoke_main() -> None:
    parser = argument_parser(epilog=__doc__, genotype_file=True)
    launch_checked(main, parser, parser.parse_args(), prepare=prepare)


if __name__ == "__main__":
    invoke_main()
