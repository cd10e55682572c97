"""Alpha gradients of the bilevel search problem (DARTS), without two defects of the original
code (docs/METHOD.md section 10): the first order at the *current* weights (not a copy made at
start), the second-order finite difference divided by 2 eps (not ``/ 2. * eps``)."""

from typing import Callable, Iterable, List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["Architect", "average_across_ranks"]

LossFn = Callable[[], Tensor]


def average_across_ranks(tensors: Sequence[Tensor]) -> None:
    """Average tensors in place over all ranks in one all-reduce (a no-op without a group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


def _grad(loss: Tensor, params: Sequence[Tensor]) -> List[Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


class Architect:
    """Computes ``alpha.grad`` for one architecture step, from loss callables on fixed batches,
    averaged across ranks (so the alphas stay identical everywhere).

    Args:
        arch_parameters: the alphas.
        weight_parameters: the weights w of the inner problem (those that train).
        second_order: the unrolled (second-order) approximation; first order otherwise.
        weight_optimizer: the weights' SGD: the virtual step is its next step (each weight's
            group's momentum and weight decay, its momentum buffer); without it, plain SGD.
        grad_scaler: the alphas' ``torch.amp.GradScaler`` (mixed precision, first order only):
            ``alpha.grad`` is then scaled, for ``grad_scaler.step(alpha_optimizer)`` to unscale.
    """

    def __init__(
        self,
        *,
        arch_parameters: Sequence[nn.Parameter],
        weight_parameters: Sequence[nn.Parameter],
        second_order: bool = False,
        weight_optimizer: Optional[torch.optim.Optimizer] = None,
        grad_scaler: Optional["torch.amp.GradScaler"] = None,
    ):
        if second_order and grad_scaler is not None:
            # The Hessian term's difference of nearby gradients is rounding error at half precision.
            raise ValueError("mixed precision (a grad_scaler) needs the first-order search")
        self.alphas: List[nn.Parameter] = list(arch_parameters)
        self.weights: List[nn.Parameter] = [w for w in weight_parameters if w.requires_grad]
        self.second_order = second_order
        self.weight_optimizer = weight_optimizer
        self.grad_scaler = grad_scaler

    def step(self, *, val_loss_fn: LossFn, train_loss_fn: Optional[LossFn] = None, xi: float = 0.0):
        """Set ``alpha.grad`` (replacing any previous value; scaled with a ``grad_scaler``).

        Args:
            val_loss_fn: computes L_val(w, alpha) on the validation batch.
            train_loss_fn: computes L_train(w, alpha) on a training batch (second order only).
            xi: learning rate of the virtual step (the weights' current lr; second order only).

        Returns:
            The validation loss (at w' in second order), unscaled, detached and rank-averaged.
        """
        if self.second_order:
            if train_loss_fn is None:
                raise ValueError("the second-order architect step needs train_loss_fn")
            loss, grads = self._unrolled_grads(val_loss_fn, train_loss_fn, xi)
        else:
            loss = val_loss_fn()
            scaled = loss if self.grad_scaler is None else self.grad_scaler.scale(loss)
            grads = _grad(scaled, self.alphas)
        loss = loss.detach().clone()
        # Together: every rank sees the same loss, so a non-finite one stops all of them.
        average_across_ranks([*grads, loss])
        for a, g in zip(self.alphas, grads):
            a.grad = g
        return loss

    def _set_weights(self, values: Iterable[Tensor]) -> None:
        with torch.no_grad():
            for w, v in zip(self.weights, values):
                w.copy_(v)

    def _unrolled_grads(self, val_loss_fn: LossFn, train_loss_fn: LossFn, xi: float):
        """d/d alpha L_val(w', alpha) - xi * Hessian-vector term, w' the virtual step."""
        backup = [w.detach().clone() for w in self.weights]
        try:
            # w' = w - xi * (momentum * buffer + grad_w L_train + wd * w): SGD's next step.
            g_train = _grad(train_loss_fn(), self.weights)
            opt = self.weight_optimizer
            groups = {p: g for g in opt.param_groups for p in g["params"]} if opt else {}
            with torch.no_grad():
                for w, g in zip(self.weights, g_train):
                    group = groups.get(w, {})
                    step = g + group.get("weight_decay", 0.0) * w
                    buf = opt.state.get(w, {}).get("momentum_buffer") if opt else None
                    if buf is not None:
                        step = step + group["momentum"] * buf
                    w.sub_(xi * step)
            loss = val_loss_fn()
            grads = _grad(loss, self.alphas + self.weights)
            d_alpha, d_w = grads[: len(self.alphas)], grads[len(self.alphas) :]
            # (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps), w+- = w +- eps d_w,
            # eps = 0.01 / ||d_w|| (DARTS); each side set from the exact backup.
            eps = 0.01 / torch.cat([d.reshape(-1) for d in d_w]).norm().clamp_min(1e-12)
            sides = []
            for sign in (1.0, -1.0):
                self._set_weights(w0 + sign * eps * d for w0, d in zip(backup, d_w))
                sides.append(_grad(train_loss_fn(), self.alphas))
        finally:
            self._set_weights(backup)
        return loss, [da - xi * ((p - n) / (2 * eps)) for da, p, n in zip(d_alpha, *sides)]
