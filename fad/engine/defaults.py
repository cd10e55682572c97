"""What search_net.py and train_net.py share: arguments, config loading, pre-flight checks."""

import argparse
import sys
from typing import Callable, List, Optional

import torch
import torch.distributed as dist
from detectron2.config import LazyConfig
from detectron2.engine import default_argument_parser, launch
from detectron2.engine.defaults import create_ddp_model
from detectron2.utils import comm
from omegaconf import DictConfig
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fad.data.datasets import (
    add_dataset_arguments,
    check_dataset_files,
    dataset_num_classes,
    register_datasets_from_args,
)
from fad.genotypes import as_genotype, load_genotype_file

__all__ = [
    "create_ddp_model_for",
    "fad_argument_parser",
    "launch_checked",
    "load_config",
    "loader_dataset_names",
]


def fad_argument_parser(*, epilog: str, genotype_file: bool) -> argparse.ArgumentParser:
    """detectron2's parser (--config-file, --num-gpus, --resume, --eval-only, overrides, ...)
    plus ``--register-coco NAME JSON IMAGE_ROOT`` and, for training, ``--genotype-file``."""
    parser = default_argument_parser(epilog=epilog)
    add_dataset_arguments(parser)
    if genotype_file:
        parser.add_argument(
            "--genotype-file",
            metavar="FILE",
            help="genotype.log of a search: line 1 box tower, line 2 class tower (None for a "
            "tower that was not searched); sets model.head.box_genotype, "
            "model.head.cls_genotype and model.head.towers",
        )
    return parser


def loader_dataset_names(loader: DictConfig) -> List[str]:
    """The dataset names of a loader config, as a list."""
    names = loader.dataset.names
    return [names] if isinstance(names, str) else list(names)


def load_config(args: argparse.Namespace, *, loaders: List[str]) -> DictConfig:
    """Load the LazyConfig with its overrides and genotype file, and check it before any work.

    Registers ``--register-coco`` datasets, then checks that the files of the datasets behind
    ``dataloader.<loaders>`` exist, that their class counts match ``model.num_classes``, and that
    the head's genotypes are well formed for the configured cells.

    Raises:
        ValueError, OSError (FileNotFoundError, ...), KeyError: with a message that names the
            problem.
    """
    register_datasets_from_args(args)
    cfg = LazyConfig.load(args.config_file)
    try:
        cfg = LazyConfig.apply_overrides(cfg, args.opts)
    except Exception as e:  # hydra's parser errors share no base class with ours
        raise ValueError(f"cannot apply the overrides {args.opts}: {e}") from None
    if getattr(args, "genotype_file", None):
        genotypes = dict(zip(("box", "cls"), load_genotype_file(args.genotype_file)))
        # The file also says which towers were searched: the others stay FCOS's conv towers.
        cfg.model.head.towers = [tower for tower, g in genotypes.items() if g is not None]
        for tower, g in genotypes.items():
            cfg.model.head[f"{tower}_genotype"] = None if g is None else str(g)
    head = cfg.model.head
    if not head.get("search", True):
        for tower in head.get("towers", ("box", "cls")):
            key = f"{tower}_genotype"
            try:
                as_genotype(head[key], num_nodes=head.get("num_nodes", 3))
            except ValueError as e:
                raise ValueError(
                    f"model.head.{key} does not fit the configured cells: {e}"
                ) from None
    for loader in loaders:
        names = loader_dataset_names(cfg.dataloader[loader])
        check_dataset_files(names)
        for name in names:
            n = dataset_num_classes(name)
            if n != cfg.model.num_classes:
                raise ValueError(
                    f"dataset {name!r} has {n} classes but model.num_classes is "
                    f"{cfg.model.num_classes}: add model.num_classes={n} to the command line"
                )
    return cfg


def launch_checked(
    main: Callable[[argparse.Namespace], None],
    args: argparse.Namespace,
    *,
    check: Callable[[argparse.Namespace], object],
) -> None:
    """Run ``check(args)`` in this process, then ``launch(main, ...)`` on the requested devices.

    Bad input (a malformed genotype file, a missing annotation file, ...) ends the run here with
    one line ``<script>: error: <message>`` and exit status 2, before any worker starts.
    """
    try:
        check(args)
    except (ValueError, OSError, KeyError) as e:  # OSError: a missing, unreadable, ... file
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        message = " ".join(str(message).split())  # one line, whatever the source wrote
        print(f"{sys.argv[0]}: error: {message}", file=sys.stderr)
        sys.exit(2)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def create_ddp_model_for(model: nn.Module, *, ddp: Optional[dict] = None) -> nn.Module:
    """detectron2's ``create_ddp_model``, also for CPU models (gloo), which take no device ids.

    A search model's alphas are left out of DDP: the weight step computes no gradient for them,
    and the :class:`~fad.nas.architect.Architect` averages their gradients across ranks itself.
    They are broadcast from rank 0 here instead, as DDP does for the parameters it holds.
    """
    alphas = model.arch_parameters() if getattr(model, "search", False) else []
    if alphas:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, model.arch_parameter_names()
        )
    kwargs = dict(ddp or {})
    if not next(model.parameters()).is_cuda:
        kwargs["device_ids"] = None
    wrapped = create_ddp_model(model, **kwargs)
    if alphas and comm.get_world_size() > 1:
        with torch.no_grad():
            for a in alphas:
                dist.broadcast(a, src=0)
    return wrapped
