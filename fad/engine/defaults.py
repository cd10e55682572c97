"""What the scripts share: arguments, config, pre-flight checks, worker setup, launch. A command
checks its input once, before any worker starts or anything is written, and ends bad input with
one ``argparse`` error line (:func:`run_checked`)."""

import argparse
import difflib
import inspect
import logging
import os
from typing import Any, Callable, List, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import create_ddp_model, default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig, MissingMandatoryValue, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fad.data import datasets
from fad.genotypes import Genotype, load_genotype_file
from fad.modeling.cuda_graphs import enable_cuda_graphs
from fad.nas.derived_cells import DerivedTower
from fad.nas.search_cells import named_arch_parameters


def argument_parser(*, epilog: str, genotype_file: bool) -> argparse.ArgumentParser:
    """detectron2's ``default_argument_parser`` plus ``--register-coco`` and, with
    ``genotype_file``, ``--genotype-file``."""
    parser = default_argument_parser(epilog=epilog)
    parser.add_argument(
        "--register-coco",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "JSON_FILE", "IMAGE_ROOT"),
        help="register a COCO-format dataset under NAME before training (repeatable)",
    )
    if genotype_file:
        add_genotype_file_argument(parser)
    return parser


def add_genotype_file_argument(parser: argparse.ArgumentParser) -> None:
    """``--genotype-file FILE``, which :func:`load_config` reads into the config."""
    parser.add_argument(
        "--genotype-file",
        metavar="FILE",
        help="genotype.log of a search (a labelled line per tower, None: not searched): makes "
        "the config's FAD towers derived towers of those genotypes",
    )


def register_datasets(args: argparse.Namespace) -> None:
    """Registers the ``--register-coco`` datasets (in the main process and in every worker)."""
    for name, json_file, image_root in args.register_coco:
        datasets.register_coco_dataset(name=name, json_file=json_file, image_root=image_root)


def loader_dataset_names(loader: DictConfig) -> List[str]:
    """The dataset names of a loader config, as a list."""
    names = loader.dataset.names
    return [names] if isinstance(names, str) else list(names)


def _update_moved_targets(node: Any) -> None:
    """Points the ``_target_``s of a config.yaml written before ``fad.solver`` moved to
    ``fad.engine.solver`` at the new module (in place)."""
    if isinstance(node, DictConfig):
        if str(node.get("_target_")).startswith("fad.solver."):
            node._target_ = "fad.engine." + node._target_[len("fad.") :]
        # Not the "???" values (a mask genotype that --genotype-file gives): reading one raises.
        node = [node[k] for k in node if not OmegaConf.is_missing(node, k)]
    for child in node if isinstance(node, (list, ListConfig)) else []:
        _update_moved_targets(child)


def _parameters_of(target: Any) -> Optional[List[str]]:
    """The keyword arguments a LazyCall target takes (a class: its ``__init__``s along the MRO),
    or ``None`` if it takes any."""
    target = locate(target) if isinstance(target, str) else target
    functions = [c.__init__ for c in getattr(target, "__mro__", ()) if "__init__" in vars(c)]
    try:
        params = [inspect.signature(f).parameters.values() for f in functions or [target]]
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    names = [p.name for ps in params for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return [n for n in dict.fromkeys(names) if n != "self"] or None


def check_override_keys(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Refuses, with a KeyError naming the closest existing key, an override of a key the config
    does not have (detectron2 would add it: with ``train.max_iters=5`` a run keeps
    ``train.max_iter``), but for hydra's ``+key=value`` and an argument of its parent's LazyCall
    target (``model.head.box_tower.dil3=True``)."""
    missing = object()
    for override in overrides:
        parts = override.split("=", 1)[0].strip().lstrip("~").split(".")
        i = len(parts)  # parts[:i]: the longest prefix of the key that exists
        while i > 0 and OmegaConf.select(cfg, ".".join(parts[:i]), default=missing) is missing:
            i -= 1
        if i == len(parts) or override.startswith("+"):
            continue
        parent = OmegaConf.select(cfg, ".".join(parts[:i]))  # None, a number: no keys
        choices = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
        if "_target_" in choices:
            arguments = _parameters_of(parent._target_)
            if arguments is None or (parts[i] in arguments and i == len(parts) - 1):
                continue
            choices += arguments
        close = difflib.get_close_matches(parts[i], [c for c in choices if c != "_target_"], n=1)
        hint = f": did you mean {'.'.join([*parts[:i], close[0]])}?" if close else ""
        raise KeyError(f"the override {'.'.join(parts)} names a key the config does not have{hint}")


def load_config(args: argparse.Namespace) -> DictConfig:
    """The LazyConfig of ``--config-file`` with ``--genotype-file`` and the overrides applied
    (ValueError, OSError or KeyError naming the problem)."""
    cfg = LazyConfig.load(args.config_file)
    _update_moved_targets(cfg)
    if getattr(args, "genotype_file", None):
        derive_towers(cfg.model, load_genotype_file(args.genotype_file))
    for override in args.opts:  # one by one: one may edit a key an earlier one made
        check_override_keys(cfg, [override])
        try:
            cfg = LazyConfig.apply_overrides(cfg, [override])
        except Exception as e:  # hydra's parser errors share no base class with ours
            raise ValueError(f"cannot apply the override {override}: {e}") from None
    return cfg


def derive_towers(model: DictConfig, genotypes: Mapping[str, Optional[Genotype]]) -> None:
    """What ``--genotype-file`` does, in place: the FAD towers of a model's config (its target's
    ``TOWER_KEYS``) become derived towers of ``genotypes`` (by tower name) of the config's shape,
    or the detector's conv tower for a ``None`` genotype (ValueError for a tower it lacks)."""
    target = model._target_
    target = locate(target) if isinstance(target, str) else target
    keys = getattr(target, "TOWER_KEYS", {})
    for name, genotype in genotypes.items():
        if name not in keys:
            raise ValueError(
                f"the genotype file holds a {name} tower's genotype, but {target.__name__} has "
                f"no {name} tower (its FAD towers: {', '.join(keys) or 'none'})"
            )
        tower = OmegaConf.select(model, keys[name])
        if genotype is not None and tower is None:
            raise ValueError(
                f"the genotype file has a {name} genotype but model.{keys[name]} is the "
                "detector's conv tower, not a FAD tower"
            )
        derived = None
        if genotype is not None:  # plain data, so that config.yaml holds lists to override
            shape = ("in_channels", "op_channels", "node_channels", "num_cells", "num_nodes")
            derived = L(DerivedTower)(
                genotype=genotype.to_plain(), **{k: tower[k] for k in shape if k in tower}
            )
        OmegaConf.update(model, keys[name], derived, merge=False)


def _instantiate(node: Any, key: str) -> Any:
    """detectron2's ``instantiate(node)``, with a constructor's ValueError or TypeError prefixed
    by the key of its node (``model.head.box_tower: ...``)."""
    if isinstance(node, ListConfig):
        built = [_instantiate(v, f"{key}.{i}") for i, v in enumerate(node)]
        return ListConfig(built, flags={"allow_objects": True})
    if not (isinstance(node, DictConfig) and "_target_" in node):
        return instantiate(node)
    kwargs = {k: _instantiate(v, f"{key}.{k}") for k, v in node.items() if k != "_target_"}
    try:  # the arguments are built, so an error here is this node's
        return instantiate({"_target_": node._target_, **kwargs})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{key}: {e}") from None


def build_model_on_meta(cfg: DictConfig) -> nn.Module:
    """Builds ``cfg.model`` on the meta device, so that its constructors check the config in a
    moment; raises ValueError naming the key of a refusing constructor or of a ``???`` value."""
    try:
        with torch.device("meta"):
            return _instantiate(cfg.model, "model")
    except MissingMandatoryValue as e:  # a "???" of the config, e.g. a mask genotype
        raise ValueError(
            f"{e.full_key} has no value: give it (a genotype: --genotype-file)"
        ) from None


def check_train_options(cfg: DictConfig) -> None:
    """Refuses a CUDA ``train.device`` on a machine without one, ``train.cuda_graphs`` without a
    dense head, and ill-typed ``train`` options of the workers."""
    train = cfg.train
    if torch.device(train.device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"train.device is {train.device!r} but this machine has no CUDA device: "
            "add train.device=cpu to the command line"
        )
    for key in ("cuda_graphs", "log_config_and_model"):
        if not isinstance(train.get(key, False), bool):
            raise ValueError(f"train.{key} must be True or False, got {train[key]!r}")
    if train.get("cuda_graphs", False) and "head" not in cfg.model:
        raise ValueError("train.cuda_graphs replays a dense detector's head; this model has none")
    threads = train.get("cpu_threads", None)
    if threads is not None and (type(threads) is not int or threads < 1):
        raise ValueError(f"train.cpu_threads must be an int >= 1 or None, got {threads!r}")


def set_cpu_threads(cfg: DictConfig, *, processes: int, loader_workers: int) -> Optional[int]:
    """On a CPU ``train.device``, sets torch's threads to ``train.cpu_threads``, at most this
    process's share of the cores (among ``processes``) less its ``loader_workers``, at least 1:
    OpenMP threads beyond the free cores wait for each other (issue 25).

    Returns:
        The thread count set, or None if left as it was (``train.cpu_threads=None``, CUDA).
    """
    threads = cfg.train.get("cpu_threads", None)
    if threads is None or torch.device(cfg.train.device).type != "cpu":
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, min(threads, (cores or 1) // processes - loader_workers))
    torch.set_num_threads(threads)
    return threads


def setup_worker(cfg: DictConfig, args: argparse.Namespace, *, loaders: Sequence[str]) -> None:
    """What every process does first: the ``--register-coco`` datasets, its CPU threads (for the
    ``loaders`` it reads), detectron2's ``default_setup`` (echoing the config file only with
    ``train.log_config_and_model=True``: config.yaml holds it) and ``fad.*`` logging to log.txt."""
    register_datasets(args)
    workers = sum(cfg.dataloader[name].get("num_workers", 0) for name in loaders)
    threads = set_cpu_threads(cfg, processes=args.num_gpus, loader_workers=workers)
    logger = logging.getLogger("detectron2")

    def no_config_echo(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Contents of args.config_file=")

    if not cfg.train.get("log_config_and_model", False):
        logger.addFilter(no_config_echo)
    try:
        default_setup(cfg, args)
    finally:
        logger.removeFilter(no_config_echo)
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="fad")
    if threads is not None:
        logger.info(
            f"CPU threads: {threads} per process (train.cpu_threads={cfg.train.cpu_threads}, "
            f"{args.num_gpus} process(es), {workers} data-loader worker(s) each)"
        )


def build_model(cfg: DictConfig) -> nn.Module:
    """The model on ``train.device``, logged (whole with ``train.log_config_and_model=True``);
    with ``train.cuda_graphs`` its head replays CUDA graphs."""
    model = instantiate(cfg.model).to(cfg.train.device)
    if cfg.train.get("cuda_graphs", False):
        enable_cuda_graphs(model)
    n = sum(p.numel() for p in model.parameters())
    logging.getLogger("detectron2").info(
        f"Model:\n{model}"
        if cfg.train.get("log_config_and_model", False)
        else f"Model: {type(model).__name__}, {n:,} parameters "
        "(train.log_config_and_model=True logs it whole)"
    )
    return model


def check_datasets(cfg: DictConfig, loaders: Sequence[str]) -> None:
    """Generates the synthetic datasets the loaders read, then checks each one's files, its class
    count against the model's and, for a mask head, its masks (naming the dataset and why)."""
    names = [n for loader in loaders for n in loader_dataset_names(cfg.dataloader[loader])]
    datasets.prepare_datasets(names)
    datasets.check_dataset_files(names)
    key = "model.num_classes" if "num_classes" in cfg.model else "model.roi_heads.num_classes"
    num_classes = OmegaConf.select(cfg, key)
    for name in dict.fromkeys(names):
        n = datasets.dataset_num_classes(name)
        if n != num_classes:
            raise ValueError(
                f"dataset {name!r} has {n} classes but {key} is {num_classes}: add "
                f"{key}={n} to the command line"
            )
    if OmegaConf.select(cfg, "model.roi_heads.mask_head") is None:
        return
    for loader in [name for name in loaders if name != "test"]:  # the loaders that train
        if not OmegaConf.select(cfg, f"dataloader.{loader}.mapper.use_instance_mask"):
            raise ValueError(
                f"the model has a mask head but dataloader.{loader}.mapper.use_instance_mask is "
                f"not True: add dataloader.{loader}.mapper.use_instance_mask=True"
            )
        datasets.check_masks(loader_dataset_names(cfg.dataloader[loader]))


def run_checked(parser: argparse.ArgumentParser, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with bad input (a malformed genotype file, a missing annotation file, ...)
    reported through ``parser.error``: one line ``<script>: error: <message>``, exit status 2."""
    try:
        return fn(*args)
    except (ValueError, OSError, KeyError) as e:  # OSError: a missing, unreadable, ... file
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        parser.error(" ".join(str(message).split()))  # one line, whatever the source wrote


def launch_checked(
    main: Callable[[argparse.Namespace, DictConfig], None],
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    prepare: Callable[[argparse.Namespace], DictConfig],
) -> None:
    """detectron2's ``launch(main, ...)`` with the config ``prepare(args)`` loads and checks
    once (:func:`run_checked`)."""
    cfg = run_checked(parser, prepare, args)
    launch(
        main, args.num_gpus, args.num_machines, args.machine_rank, args.dist_url, args=(args, cfg)
    )


def create_ddp_model_for(model: nn.Module, *, ddp: Optional[dict] = None) -> nn.Module:
    """detectron2's ``create_ddp_model``, also for CPU models (gloo: no device ids), with a search
    model's alphas left out of DDP (the weight step computes no gradient for them; the
    :class:`~fad.nas.architect.Architect` averages theirs) and broadcast from rank 0."""
    alphas = dict(named_arch_parameters(model))
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, list(alphas))
    cpu = {} if next(model.parameters()).is_cuda else {"device_ids": None}
    wrapped = create_ddp_model(model, **{**(ddp or {}), **cpu})
    if comm.get_world_size() > 1:
        with torch.no_grad():
            for alpha in alphas.values():
                dist.broadcast(alpha, src=0)
    return wrapped
