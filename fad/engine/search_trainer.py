"""SearchTrainer: the bilevel search loop as a detectron2 SimpleTrainer (FAD_DESIGN section 8)."""

import contextlib
import time
from typing import Iterable, List, Optional

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fad.nas.architect import Architect

__all__ = ["SearchTrainer"]


class SearchTrainer(SimpleTrainer):
    """Each iteration: an alpha step on a batch of the arch loader, then a weight step.

    The weight step is :class:`SimpleTrainer`'s (DDP, EventStorage metrics, the non-finite loss
    check), plus a gradient-norm clip of the weights; it computes no alpha gradients. The alpha
    step runs on the unwrapped model: its gradients are averaged across ranks by the
    :class:`Architect` (so alphas stay identical everywhere), and the backbone runs without
    autograd, since the alphas live in the head.

    Args:
        model: a search-mode ``FADFCOS``, possibly wrapped in DistributedDataParallel by
            :func:`fad.engine.defaults.create_ddp_model_for` (which leaves the alphas out).
        data_loader: training batches, for the weights.
        optimizer: the weight optimizer (must not hold the alphas).
        arch_data_loader: validation batches, for the alphas (a different split).
        arch_optimizer: the alpha optimizer (Adam in the paper).
        second_order: unrolled alpha gradient (the virtual step moves the head's weights).
        clip_grad_norm: max gradient norm of the weights; ``None`` or 0 for no clipping.
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
        clip_grad_norm: Optional[float] = None,
    ):
        super().__init__(model, data_loader, optimizer)
        self.arch_data_loader = arch_data_loader
        self._arch_iter = None
        self.arch_optimizer = arch_optimizer
        self.clip_grad_norm = clip_grad_norm
        module = self.unwrapped_model
        alphas = module.arch_parameters()
        alpha_ids = {id(a) for a in alphas}
        weights_in_optim = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if alpha_ids & weights_in_optim:
            raise ValueError(
                "the weight optimizer holds architecture weights: build its parameters with "
                "fad.solver.get_weight_optimizer_params"
            )
        if isinstance(model, DistributedDataParallel):
            if not set(module.arch_parameter_names()) <= model.parameters_to_ignore:
                raise ValueError(
                    "DDP holds the architecture weights, whose gradients the weight step does "
                    "not compute: wrap the model with fad.engine.defaults.create_ddp_model_for"
                )
        self._weights: List[nn.Parameter] = module.weight_parameters()
        group = optimizer.param_groups[0]
        self.architect = Architect(
            arch_parameters=alphas,
            # The alpha step's graph starts at the head (features are computed without autograd),
            # so the virtual step of the second-order gradient moves the head's weights.
            weight_parameters=[p for p in module.head.parameters() if id(p) not in alpha_ids],
            second_order=second_order,
            momentum=group.get("momentum", 0.0),
            weight_decay=group.get("weight_decay", 0.0),
            weight_optimizer=optimizer,
        )

    @property
    def unwrapped_model(self) -> nn.Module:
        model = self.model
        return model.module if isinstance(model, DistributedDataParallel) else model

    def run_step(self):
        if not self.model.training:
            raise RuntimeError("[SearchTrainer] model was changed to eval mode!")
        start = time.perf_counter()
        arch_data = next(self._arch_data_iter)
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        arch_start = time.perf_counter()
        arch_loss = self._arch_step(arch_data, data)
        storage = get_event_storage()
        storage.put_scalars(arch_loss=arch_loss, arch_time=time.perf_counter() - arch_start)

        with self._alphas_frozen():
            loss_dict = self.model(data)
            losses = sum(loss_dict.values())
            self.optimizer.zero_grad()
            losses.backward()
        self.after_backward()
        # Metrics first: SimpleTrainer raises FloatingPointError there on a non-finite loss,
        # before the step could write NaN into the weights.
        self._write_metrics(loss_dict, data_time)
        if self.clip_grad_norm:
            norm = torch.nn.utils.clip_grad_norm_(self._weights, self.clip_grad_norm)
            storage.put_scalar("grad_norm", norm.item())
        self.optimizer.step()

    @contextlib.contextmanager
    def _alphas_frozen(self):
        """The weight step needs no alpha gradients: without this, its backward would compute
        them at every mixed op (a product and a full reduction per candidate weight) only for
        the next alpha step to overwrite them. DDP ignores the alphas (see
        :func:`fad.engine.defaults.create_ddp_model_for`), so it waits for no gradient of them.
        """
        for a in self.architect.alphas:
            a.requires_grad_(False)
        try:
            yield
        finally:
            for a in self.architect.alphas:
                a.requires_grad_(True)

    def _arch_step(self, arch_data: list, data: list) -> float:
        module = self.unwrapped_model

        def val_loss() -> torch.Tensor:
            return sum(module.losses_with_frozen_features(arch_data).values())

        def train_loss() -> torch.Tensor:
            return sum(module.losses_with_frozen_features(data).values())

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
        self.arch_optimizer.step()
        return loss

    @property
    def _arch_data_iter(self):
        if self._arch_iter is None:
            self._arch_iter = iter(self.arch_data_loader)
        return self._arch_iter

    def state_dict(self):
        ret = super().state_dict()
        ret["arch_optimizer"] = self.arch_optimizer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.arch_optimizer.load_state_dict(state_dict["arch_optimizer"])
