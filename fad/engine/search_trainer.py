"""SearchTrainer: the bilevel search loop as a SimpleTrainer (docs/METHOD.md section 8)."""

import contextlib
import time
from typing import Iterable, List, Optional

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fad.engine.cost import CostTable, check_cost_weight
from fad.nas.architect import Architect
from fad.nas.search_cells import arch_parameters, named_arch_parameters, weight_parameters

__all__ = ["SearchTrainer", "amp_precision_for", "check_warmup_iters"]


def check_warmup_iters(warmup_iters: int, *, key: str = "warmup_iters") -> int:
    """Returns ``warmup_iters``; raises ValueError, naming ``key``, unless it is an int >= 0."""
    if type(warmup_iters) is not int or warmup_iters < 0:
        raise ValueError(f"{key} must be an int >= 0, got {warmup_iters!r}")
    return warmup_iters


def amp_precision_for(device_type: str) -> torch.dtype:
    """The autocast dtype of ``train.amp.enabled``: float16 on GPUs, as detectron2's AMPTrainer;
    bfloat16 on CPUs, whose float16 kernels are much slower than their float32 ones."""
    return torch.bfloat16 if device_type == "cpu" else torch.float16


class SearchTrainer(SimpleTrainer):
    """Each iteration: an alpha step on a batch of the arch loader, then a weight step (weight
    steps only during the first ``warmup_iters`` iterations).

    The weight step is :class:`SimpleTrainer`'s (DDP, EventStorage metrics, the non-finite loss
    check), plus a gradient-norm clip of the weights; it computes no alpha gradients. The alpha
    step runs on the unwrapped model: its gradients are averaged across ranks by the
    :class:`Architect` (so alphas stay identical everywhere), and the backbone runs without
    autograd, since the alphas live in the head.

    With ``amp_precision``, both steps run their forward under ``torch.autocast``, as detectron2's
    ``AMPTrainer`` does for training. Each step has its own ``GradScaler`` (the two losses differ
    in size), enabled for float16: a step whose gradients overflow is skipped and its scale
    lowered, so no inf or NaN reaches the weights or the alphas.

    Args:
        model: a search-mode ``FADFCOS``, possibly wrapped in DistributedDataParallel by
            :func:`fad.engine.defaults.create_ddp_model_for` (which leaves the alphas out).
        data_loader: training batches, for the weights.
        optimizer: the weight optimizer (must not hold the alphas).
        arch_data_loader: validation batches, for the alphas (a different split).
        arch_optimizer: the alpha optimizer (Adam in the paper).
        second_order: unrolled alpha gradient (the virtual step moves the head's weights).
        warmup_iters: iterations of weight steps only, before the first alpha step (as several
            DARTS variants do, so that the candidates are compared once trained a little).
        clip_grad_norm: max gradient norm of the weights; ``None`` or 0 for no clipping.
        amp_precision: ``torch.float16`` or ``torch.bfloat16`` for mixed precision (first order
            only: the :class:`Architect` refuses a scaler in second order; needs torch >= 2.3),
            ``None`` for full precision.
        grad_scaler, arch_grad_scaler: the weights' and the alphas' ``torch.amp.GradScaler``;
            by default new ones, enabled for float16 only (bfloat16 has float32's range).
        cost_weight: the weight of the towers' expected cost in the alpha step's loss (0: the
            paper's search; see :mod:`fad.engine.cost`).
        cost_table: the candidates' costs (a :class:`fad.engine.cost.CostTable`); needed when
            ``cost_weight`` > 0.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        arch_data_loader: Iterable,
        arch_optimizer: torch.optim.Optimizer,
        second_order: bool = False,
        warmup_iters: int = 0,
        clip_grad_norm: Optional[float] = None,
        amp_precision: Optional[torch.dtype] = None,
        grad_scaler: Optional["torch.amp.GradScaler"] = None,
        arch_grad_scaler: Optional["torch.amp.GradScaler"] = None,
        cost_weight: float = 0.0,
        cost_table: Optional[CostTable] = None,
    ):
        super().__init__(model, data_loader, optimizer)
        if amp_precision not in (None, torch.float16, torch.bfloat16):
            raise ValueError(f"amp_precision must be float16 or bfloat16, got {amp_precision}")
        self.warmup_iters = check_warmup_iters(warmup_iters)
        check_cost_weight(cost_weight)
        if cost_weight > 0 and cost_table is None:
            raise ValueError("a cost_weight > 0 needs the cost_table of the candidates")
        self.cost_weight = cost_weight
        self.cost_table = cost_table
        self.arch_data_loader = arch_data_loader
        self._arch_iter = None
        self.arch_optimizer = arch_optimizer
        self.clip_grad_norm = clip_grad_norm
        module = self.unwrapped_model
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
        self._weights: List[nn.Parameter] = weight_parameters(module)
        self.amp_precision = amp_precision
        self._device_type = next(module.parameters()).device.type
        scaling = amp_precision == torch.float16
        if amp_precision is not None:
            grad_scaler = grad_scaler or torch.amp.GradScaler(self._device_type, enabled=scaling)
            arch_grad_scaler = arch_grad_scaler or torch.amp.GradScaler(
                self._device_type, enabled=scaling
            )
        self.grad_scaler = grad_scaler
        self.arch_grad_scaler = arch_grad_scaler
        group = optimizer.param_groups[0]
        self.architect = Architect(
            arch_parameters=alphas,
            # The alpha step's graph starts at the head (features are computed without autograd),
            # so the virtual step of the second-order gradient moves the head's weights.
            weight_parameters=weight_parameters(module.head),
            second_order=second_order,
            momentum=group.get("momentum", 0.0),
            weight_decay=group.get("weight_decay", 0.0),
            weight_optimizer=optimizer,
            grad_scaler=arch_grad_scaler,
        )

    @property
    def unwrapped_model(self) -> nn.Module:
        model = self.model
        return model.module if isinstance(model, DistributedDataParallel) else model

    def run_step(self):
        if not self.model.training:
            raise RuntimeError("[SearchTrainer] model was changed to eval mode!")
        start = time.perf_counter()
        search_alphas = self.iter >= self.warmup_iters
        arch_data = next(self._arch_data_iter) if search_alphas else None
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        storage = get_event_storage()
        if search_alphas:
            arch_start = time.perf_counter()
            arch_loss = self._arch_step(arch_data, data)
            storage.put_scalars(arch_loss=arch_loss, arch_time=time.perf_counter() - arch_start)

        with self._alphas_frozen():
            with self._autocast():
                loss_dict = self.model(data)
                losses = sum(loss_dict.values())
            self.optimizer.zero_grad()
            self._scaled(self.grad_scaler, losses).backward()
        self.after_backward()
        # Metrics first: SimpleTrainer raises FloatingPointError there on a non-finite loss,
        # before the step could write NaN into the weights.
        self._write_metrics(loss_dict, data_time)
        if self.clip_grad_norm:
            if self.grad_scaler is not None:
                self.grad_scaler.unscale_(self.optimizer)  # clip the true gradients
            norm = torch.nn.utils.clip_grad_norm_(self._weights, self.clip_grad_norm)
            storage.put_scalar("grad_norm", norm.item())
        self._optimizer_step(self.grad_scaler, self.optimizer)

    def _autocast(self):
        if self.amp_precision is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device_type, dtype=self.amp_precision)

    @staticmethod
    def _scaled(scaler: Optional["torch.amp.GradScaler"], loss: torch.Tensor) -> torch.Tensor:
        return loss if scaler is None else scaler.scale(loss)

    @staticmethod
    def _optimizer_step(
        scaler: Optional["torch.amp.GradScaler"], optimizer: torch.optim.Optimizer
    ) -> None:
        """``optimizer.step()``; with a scaler, skipped when the gradients overflowed."""
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    @staticmethod
    @contextlib.contextmanager
    def _frozen(params: List[nn.Parameter]):
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def _alphas_frozen(self):
        """The weight step needs no alpha gradients: without this, its backward would compute
        them at every mixed op only for the next alpha step to overwrite them. DDP ignores the
        alphas (see :func:`fad.engine.defaults.create_ddp_model_for`), so it waits for no
        gradient of them.
        """
        return self._frozen(self.architect.alphas)

    def _weights_frozen(self):
        """The first-order alpha step needs alpha gradients only. Autograd would not compute the
        weights' anyway, but a head replayed from CUDA graphs (``train.cuda_graphs``) records
        the gradients of whatever requires grad: frozen weights give the alpha step a graph of
        its own, which computes no weight gradients. (Second order differentiates the weights.)
        """
        if self.architect.second_order:
            return contextlib.nullcontext()
        return self._frozen(self._weights)

    def _arch_step(self, arch_data: list, data: list) -> float:
        module = self.unwrapped_model

        def val_loss() -> torch.Tensor:
            with self._autocast():
                loss = sum(module.losses_with_frozen_features(arch_data).values())
            if self.cost_weight > 0:
                cost = self.cost_table.expected_cost(module.search_towers())
                loss = loss + self.cost_weight * cost
            return loss

        def train_loss() -> torch.Tensor:
            return sum(module.losses_with_frozen_features(data).values())

        # What the model logs itself (FCOS's num_pos_anchors) goes under arch/, apart from the
        # weight step's values of the same iteration.
        with get_event_storage().name_scope("arch"), self._weights_frozen():
            loss = self.architect.step(
                val_loss_fn=val_loss,
                train_loss_fn=train_loss if self.architect.second_order else None,
                xi=self.optimizer.param_groups[0]["lr"],
            ).item()
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(
                f"Architecture loss became infinite or NaN at iteration={self.iter}! "
                "The alphas were not updated."
            )
        self._optimizer_step(self.arch_grad_scaler, self.arch_optimizer)
        return loss

    @property
    def _arch_data_iter(self):
        if self._arch_iter is None:
            self._arch_iter = iter(self.arch_data_loader)
        return self._arch_iter

    def _enabled_scalers(self):
        return {
            key: scaler
            for key, scaler in (
                ("grad_scaler", self.grad_scaler),
                ("arch_grad_scaler", self.arch_grad_scaler),
            )
            if scaler is not None and scaler.is_enabled()
        }

    def state_dict(self):
        ret = super().state_dict()
        ret["arch_optimizer"] = self.arch_optimizer.state_dict()
        for key, scaler in self._enabled_scalers().items():
            ret[key] = scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.arch_optimizer.load_state_dict(state_dict["arch_optimizer"])
        # A checkpoint of a full-precision run has no scaler state: the scalers start afresh.
        for key, scaler in self._enabled_scalers().items():
            if key in state_dict:
                scaler.load_state_dict(state_dict[key])
