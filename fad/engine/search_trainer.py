"""SearchTrainer: the bilevel search loop on detectron2's trainers (docs/METHOD.md section 8)."""

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Dict, Iterable, Iterator, List, Optional

import torch
from detectron2.engine import AMPTrainer, SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fad.engine.cost import UNITS, CostTable
from fad.genotypes import RANKS, Genotype
from fad.nas.architect import Architect
from fad.nas.search_cells import arch_parameters, named_arch_parameters, weight_parameters
from fad.nas.selection import perturbation_genotype
from fad.utils import frozen

__all__ = ["SELECTIONS", "SearchOptions", "SearchTrainer"]

logger = logging.getLogger(__name__)
#: How a search's final genotypes are chosen: by the alphas (the paper) or by perturbation
#: (DARTS-PT, fad/nas/selection.py).
SELECTIONS = ("alpha", "perturbation")


def _check(key: str, value, *, choices: tuple = (), low: Optional[int] = None) -> None:
    """One search option: one of ``choices``, an int >= ``low``, or else a finite number >= 0."""
    if choices:
        if value not in choices:
            raise ValueError(f"{key} must be {' or '.join(map(repr, choices))}, got {value!r}")
    elif low is not None:
        if type(value) is not int or value < low:
            raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
    elif (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf
    ):
        raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class SearchOptions:
    """The options of a search (``cfg.search``), checked when built: search_net.py builds them
    from the config (:meth:`from_config`) before any worker starts.

    Args:
        second_order: unrolled alpha gradient (the virtual step moves the head's weights).
        warmup_iters: iterations of weight steps only, before the first alpha step (as several
            DARTS variants do, so that the candidates are compared once trained a little).
        clip_grad_norm: max norm of all the weights' gradients together; ``None`` or 0: no clip.
        amp: mixed precision (``train.amp.enabled``): float16 with GradScalers on GPUs, bfloat16
            on CPUs (whose float16 kernels are slow). First order only: the second order's
            finite difference of two nearby gradients is mostly rounding error at half precision.
        cost_weight: the weight of the towers' expected cost in the alpha step's loss (0: the
            paper's search; see :mod:`fad.engine.cost`).
        cost: what the cost table holds, ``"flops"`` or ``"latency"``.
        genotype_rank: how the alphas rank candidates, ``"softmax"`` or ``"raw"`` (the original
            code's; :func:`fad.genotypes.derive_genotype`).
        history_period: iterations between samples of the softmax weights for ``alphas.png``
            (``train.log_period``).
        selection: how the final genotypes are chosen, one of :data:`SELECTIONS`.
        selection_batches: arch batches per rank on which the perturbation selection measures
            each validation loss (the same batches for every removal).
        selection_tune_iters: weight steps after each of the perturbation selection's decisions
            (the paper's fine-tuning; 0: every removal measured on the supernet as searched).
    """

    second_order: bool = False
    warmup_iters: int = 0
    clip_grad_norm: Optional[float] = None
    amp: bool = False
    cost_weight: float = 0.0
    cost: str = "flops"
    genotype_rank: str = "softmax"
    history_period: int = 20
    selection: str = "alpha"
    selection_batches: int = 8
    selection_tune_iters: int = 0

    def __post_init__(self):
        _check("search.warmup_iters", self.warmup_iters, low=0)
        if self.clip_grad_norm is not None:
            _check("search.clip_grad_norm", self.clip_grad_norm)
        _check("search.cost_weight", self.cost_weight)
        _check("search.cost", self.cost, choices=UNITS)
        _check("search.genotype_rank", self.genotype_rank, choices=RANKS)
        _check("train.log_period", self.history_period, low=1)
        _check("search.selection", self.selection, choices=SELECTIONS)
        _check("search.selection_batches", self.selection_batches, low=1)
        _check("search.selection_tune_iters", self.selection_tune_iters, low=0)
        if self.amp and self.second_order:
            raise ValueError(
                "train.amp.enabled needs the first-order search (search.second_order=False)"
            )

    @classmethod
    def from_config(cls, cfg) -> "SearchOptions":
        """From ``cfg.search``, ``cfg.train.amp.enabled`` and ``cfg.train.log_period``; a key
        that an older run's config.yaml lacks takes the paper's setting."""
        try:
            return cls(**cfg.search, amp=cfg.train.amp.enabled, history_period=cfg.train.log_period)
        except TypeError as e:  # a key of cfg.search that is no option
            raise ValueError(f"cfg.search: {e}") from None


class _CPUAutocast(nn.Module):
    """A model whose forward runs under a bfloat16 autocast: AMPTrainer's ``run_step`` needs
    CUDA, so on CPUs the mixed-precision weight step is SimpleTrainer's on this model (bfloat16
    has float32's range: no scaler); the backward runs outside autocast, as PyTorch advises."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.module(*args)


class SearchTrainer(AMPTrainer):
    """Each iteration: an alpha step on a batch of the arch loader, then detectron2's weight
    step (weight steps only during the first ``options.warmup_iters`` iterations).

    The weight step is detectron2's own ``run_step``, with the alphas frozen, so that its
    backward computes no alpha gradients (the next alpha step would overwrite them) and DDP,
    which ignores the alphas (:func:`fad.engine.defaults.create_ddp_model_for`), waits for none:
    :class:`SimpleTrainer`'s in full precision; with ``options.amp``, :class:`AMPTrainer`'s on
    GPUs (float16 autocast, a GradScaler that skips a step whose gradients overflow), and on CPUs
    SimpleTrainer's on the model's forward under a bfloat16 autocast. Their metrics, non-finite
    loss check and ``after_backward`` hooks all apply; the gradient-norm clip of the weights is
    :meth:`after_backward`. Only the second order's batch is taken first (by the alpha step).

    The alpha step runs on the unwrapped model: its gradients are averaged across ranks by the
    :class:`Architect` (so alphas stay identical everywhere), and the backbone runs without
    autograd, since the alphas live in the head. With ``options.amp`` its forward runs under
    the same autocast, and on GPUs with a GradScaler of its own (the two losses differ in size).

    Args:
        model: a search-mode FAD detector, possibly wrapped in DistributedDataParallel by
            :func:`fad.engine.defaults.create_ddp_model_for` (which leaves the alphas out).
        data_loader: training batches, for the weights.
        optimizer: the weight optimizer (must not hold the alphas).
        arch_data_loader: validation batches, for the alphas (a different split).
        arch_optimizer: the alpha optimizer (Adam in the paper).
        options: the search's options (default: the paper's first-order search).
        cost_table: the candidates' costs (a :class:`fad.engine.cost.CostTable`); needed when
            ``options.cost_weight`` > 0.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        arch_data_loader: Iterable,
        arch_optimizer: torch.optim.Optimizer,
        options: Optional[SearchOptions] = None,
        cost_table: Optional[CostTable] = None,
    ):
        options = options or SearchOptions()
        if options.cost_weight > 0 and cost_table is None:
            raise ValueError("a cost_weight > 0 needs the cost_table of the candidates")
        module = model.module if isinstance(model, DistributedDataParallel) else model
        alphas = arch_parameters(module)
        if set(alphas) & {p for g in optimizer.param_groups for p in g["params"]}:
            raise ValueError(
                "the weight optimizer holds architecture weights: build its parameters with "
                "fad.engine.solver.get_weight_optimizer_params"
            )
        if isinstance(model, DistributedDataParallel):
            if not {n for n, _ in named_arch_parameters(module)} <= model.parameters_to_ignore:
                raise ValueError(
                    "DDP holds the architecture weights, whose gradients the weight step does "
                    "not compute: wrap the model with fad.engine.defaults.create_ddp_model_for"
                )
        device = next(module.parameters()).device.type
        scaling = options.amp and device == "cuda"
        if options.amp and not scaling:
            model = _CPUAutocast(model)
        super().__init__(
            model,
            data_loader,
            optimizer,
            grad_scaler=torch.amp.GradScaler(device, enabled=scaling),
            precision=torch.float16 if device == "cuda" else torch.bfloat16,
        )
        self.options = options
        self.cost_table = cost_table
        self.arch_data_loader = arch_data_loader
        self._arch_iter = None
        self._held_batch: list = []
        self.arch_optimizer = arch_optimizer
        self.arch_grad_scaler = torch.amp.GradScaler(device, enabled=scaling)
        self._device_type = device
        self._weights: List[nn.Parameter] = weight_parameters(module)
        self.architect = Architect(
            arch_parameters=alphas,
            # The alpha step's graph starts after the backbone (features are computed without
            # autograd), so the virtual step of the second-order gradient moves those weights.
            weight_parameters=module.alpha_step_weights(),
            second_order=options.second_order,
            weight_optimizer=optimizer,
            grad_scaler=self.arch_grad_scaler if scaling else None,
        )

    @property
    def unwrapped_model(self) -> nn.Module:
        model = self.model
        while isinstance(model, (_CPUAutocast, DistributedDataParallel)):
            model = model.module
        return model

    def run_step(self):
        if self.iter >= self.options.warmup_iters:
            start = time.perf_counter()
            arch_data = next(self._arch_data_iter)
            data = None
            if self.options.second_order:
                # The virtual step moves the weights on the batch the weight step takes (DARTS).
                data = next(super()._data_loader_iter)
                self._held_batch.append(data)
            data_time = time.perf_counter() - start
            loss = self._arch_step(arch_data, data)
            get_event_storage().put_scalars(
                arch_loss=loss,
                arch_data_time=data_time,
                arch_time=time.perf_counter() - start - data_time,
            )
        self._weight_step()

    def _weight_step(self) -> None:
        with frozen(self.architect.alphas):
            if self.grad_scaler.is_enabled():
                super().run_step()
            else:
                SimpleTrainer.run_step(self)

    @property
    def _data_loader_iter(self):
        """Where detectron2's ``run_step`` takes its batch: the one the alpha step held, if any."""
        if self._held_batch:
            return iter([self._held_batch.pop()])
        return super()._data_loader_iter

    def after_backward(self):
        """Clip the norm of all the weights' gradients together (unscaled first), between the
        backward and the step. detectron2's clip (``maybe_add_gradient_clipping``) wraps the
        optimizer's step to clip each parameter's gradient on its own, not the global norm that
        DARTS and the paper clip."""
        if self.options.clip_grad_norm:
            self.grad_scaler.unscale_(self.optimizer)  # a no-op without float16
            norm = torch.nn.utils.clip_grad_norm_(self._weights, self.options.clip_grad_norm)
            get_event_storage().put_scalar("grad_norm", norm.item())
        super().after_backward()

    def _arch_step(self, arch_data: list, data: Optional[list]) -> float:
        module = self.unwrapped_model
        weight = self.options.cost_weight

        def val_loss() -> torch.Tensor:
            with torch.autocast(self._device_type, dtype=self.precision, enabled=self.options.amp):
                loss = sum(module.losses_with_frozen_features(arch_data).values())
            if weight > 0:
                loss = loss + weight * self.cost_table.expected_cost(module.search_towers())
            return loss

        # Losses that draw at random (Mask R-CNN samples anchors and RoIs) draw the same in each
        # of the second order's training losses: its finite difference of two of them then
        # measures the weights' change, not the draw.
        draws = _same_draws(self._device_type)

        def train_loss() -> torch.Tensor:
            with draws():
                return sum(module.losses_with_frozen_features(data).values())

        # The first-order alpha step needs alpha gradients only. Autograd would not compute the
        # weights' anyway, but a head replayed from CUDA graphs (train.cuda_graphs) records the
        # gradients of whatever requires grad: frozen weights give the alpha step a graph of its
        # own, which computes no weight gradients. (Second order differentiates the weights.)
        fixed = [] if self.options.second_order else self._weights
        # What the model logs itself (FCOS's num_pos_anchors) goes under arch/, apart from the
        # weight step's values of the same iteration.
        with get_event_storage().name_scope("arch"), frozen(fixed):
            loss = self.architect.step(
                val_loss_fn=val_loss,
                train_loss_fn=train_loss if data is not None else None,
                xi=self.optimizer.param_groups[0]["lr"],
            ).item()
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"Architecture loss became infinite or NaN at iteration={self.iter}! "
                "The alphas were not updated."
            )
        self.arch_grad_scaler.step(self.arch_optimizer)  # skipped if the gradients overflowed
        self.arch_grad_scaler.update()
        return loss

    def genotypes(self) -> Dict[str, Optional[Genotype]]:
        """The searched genotypes by ``options.selection``, per tower (``None``: not searched).

        ``"alpha"`` derives them from the alphas, ranked by ``options.genotype_rank``.
        ``"perturbation"`` asks the supernet (DARTS-PT, :func:`fad.nas.selection.
        perturbation_genotype`): each validation loss is the mean over
        ``options.selection_batches`` batches of the arch loader, averaged across ranks so that
        every rank takes the same decisions; the cost (validation passes, seconds) is logged.
        Must be called on every rank.
        """
        model = self.unwrapped_model
        if self.options.selection == "alpha":
            return model.genotypes(rank=self.options.genotype_rank)
        batches = [next(self._arch_data_iter) for _ in range(self.options.selection_batches)]
        # The same draws (Mask R-CNN's sampled anchors and RoIs) in every validation pass, so that
        # two removals differ by the removal, not by the draw.
        draws = _same_draws(self._device_type)

        def val_loss() -> torch.Tensor:
            # What the model logs itself (FCOS's num_pos_anchors) goes under selection/.
            scope = get_event_storage().name_scope("selection")
            with scope, _kept_buffers(model), draws():
                losses = [sum(model.losses_with_frozen_features(b).values()) for b in batches]
            loss = torch.stack(losses).mean().float()
            if comm.get_world_size() > 1:
                torch.distributed.all_reduce(loss)
                loss /= comm.get_world_size()
            return loss

        def tune() -> None:
            for _ in range(self.options.selection_tune_iters):
                self._weight_step()

        genotypes = {name: None for name in model.fad_towers()}  # None: a tower not searched
        for name, tower in model.search_towers().items():
            selection = perturbation_genotype(
                tower,
                val_loss_fn=val_loss,
                tune=tune if self.options.selection_tune_iters else None,
            )
            genotypes[name] = selection.genotype
            logger.info(
                f"Perturbation selection of the {name} tower: {selection.val_passes} validation "
                f"passes of {len(batches)} batch(es), {selection.seconds:.1f} s; supernet "
                f"validation loss {selection.base_loss:.4f}"
            )
        return genotypes

    @property
    def _arch_data_iter(self):
        if self._arch_iter is None:
            self._arch_iter = iter(self.arch_data_loader)
        return self._arch_iter

    def state_dict(self):
        ret = super().state_dict()
        ret["arch_optimizer"] = self.arch_optimizer.state_dict()
        ret["arch_grad_scaler"] = self.arch_grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        # Not AMPTrainer's, which needs a scaler state: a full-precision run's checkpoint has
        # none (an empty one, or none at all before this trainer stored it); the scalers of a
        # mixed-precision search resumed from it start afresh.
        SimpleTrainer.load_state_dict(self, state_dict)
        self.arch_optimizer.load_state_dict(state_dict["arch_optimizer"])
        for key in ("grad_scaler", "arch_grad_scaler"):
            if state_dict.get(key):
                getattr(self, key).load_state_dict(state_dict[key])


@contextlib.contextmanager
def _kept_buffers(model: nn.Module) -> Iterator[None]:
    """The model's buffers (BatchNorm statistics) as they were after the block: a validation
    pass of the selection measures the supernet, it does not train it."""
    saved = [b.detach().clone() for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(model.buffers(), saved):
                b.copy_(s)


def _same_draws(device_type: str) -> Callable[[], ContextManager[None]]:
    """A context in which the random generators of this process start from the state they
    have now, each time it is entered."""
    devices = [torch.cuda.current_device()] if device_type == "cuda" else []
    state = torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]

    @contextlib.contextmanager
    def replay() -> Iterator[None]:
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(state[0])
            for device, cuda_state in zip(devices, state[1]):
                torch.cuda.set_rng_state(cuda_state, device)
            yield

    return replay
