"""Architecture-weight gradients of the bilevel search problem (DARTS, as used by FAD).

The architect is independent of detectron2: it takes the parameters and two callables that
compute the training and the validation loss on a batch fixed by the caller.

Two defects of the original FAD code are fixed here (docs/METHOD.md section 10):
- the first-order gradient is taken at the model's *current* weights (the original used a copy
  of the model made at start and never updated, so its gradients came from stale weights);
- the second-order finite-difference term is scaled by 1 / (2 eps) (the original wrote
  ``/ 2. * eps``, i.e. eps / 2).
"""

from typing import Callable, List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Architect", "average_across_ranks"]

LossFn = Callable[[], torch.Tensor]


def average_across_ranks(tensors: Sequence[torch.Tensor]) -> None:
    """Average tensors in place over all ranks (a no-op without ``torch.distributed``).

    All tensors travel in one flat all-reduce, not one collective each.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


class Architect:
    """Computes ``alpha.grad`` for one architecture step.

    Args:
        arch_parameters: the alphas.
        weight_parameters: the weights w of the inner problem (everything else that trains).
        second_order: use the unrolled (second-order) approximation; first-order otherwise.
        weight_optimizer: the weights' SGD: the virtual step is its next step (each weight's
            group's momentum and weight decay, its momentum buffer); without it, plain SGD.
        grad_scaler: for mixed precision, the alphas' ``torch.amp.GradScaler``: the validation
            loss is scaled before it is differentiated, so ``alpha.grad`` holds scaled gradients,
            which ``grad_scaler.step(alpha_optimizer)`` unscales (skipping the step on an
            overflow). First order only.

    The loss callables return a scalar tensor computed on fixed batches; the architect calls
    them at different weights. With ``torch.distributed`` initialised, alpha gradients (and the
    returned loss) are averaged across ranks, so alphas stay identical everywhere after an
    optimizer step.
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
            # The finite-difference Hessian term divides a difference of two nearby gradients by
            # 2 eps: at half precision that difference is mostly rounding error.
            raise ValueError("mixed precision (a grad_scaler) needs the first-order search")
        self.alphas: List[nn.Parameter] = list(arch_parameters)
        self.weights: List[nn.Parameter] = [w for w in weight_parameters if w.requires_grad]
        self.second_order = second_order
        self.weight_optimizer = weight_optimizer
        self.grad_scaler = grad_scaler

    def step(self, *, val_loss_fn: LossFn, train_loss_fn: Optional[LossFn] = None, xi: float = 0.0):
        """Set ``alpha.grad`` (replacing any previous value) and return the validation loss.

        With a ``grad_scaler``, ``alpha.grad`` is scaled by its current scale; the returned loss
        is not.

        Args:
            val_loss_fn: computes L_val(w, alpha) on the validation batch.
            train_loss_fn: computes L_train(w, alpha) on a training batch (second order only).
            xi: learning rate of the virtual step (the weights' current lr; second order only).

        Returns:
            The validation loss, detached (at the unrolled weights w' in second order) and
            averaged across ranks.
        """
        if self.second_order:
            if train_loss_fn is None:
                raise ValueError("the second-order architect step needs train_loss_fn")
            loss, grads = self._unrolled_grads(val_loss_fn, train_loss_fn, xi)
        else:
            loss = val_loss_fn()
            scaled = loss if self.grad_scaler is None else self.grad_scaler.scale(loss)
            grads = self._grad(scaled, self.alphas)
        loss = loss.detach().clone()
        # The loss travels with the gradients (one all-reduce): every rank then sees the same
        # loss, so a non-finite one on any rank stops all of them before the alphas move.
        average_across_ranks([*grads, loss])
        for a, g in zip(self.alphas, grads):
            a.grad = g
        return loss

    @staticmethod
    def _grad(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    def _unrolled_grads(self, val_loss_fn: LossFn, train_loss_fn: LossFn, xi: float):
        """d/d alpha L_val(w', alpha) - xi * Hessian-vector term, with w' the virtual step."""
        backup = [w.detach().clone() for w in self.weights]
        try:
            # w' = w - xi * (momentum * buffer + grad_w L_train + wd * w): SGD's next step.
            g_train = self._grad(train_loss_fn(), self.weights)
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
            grads = self._grad(loss, self.alphas + self.weights)
            d_alpha, d_w = grads[: len(self.alphas)], grads[len(self.alphas) :]
            hessian = self._hessian_vector(d_w, train_loss_fn, backup)
        finally:
            self._restore(backup)
        return loss, [da - xi * h for da, h in zip(d_alpha, hessian)]

    def _hessian_vector(self, d_w, train_loss_fn: LossFn, backup) -> List[torch.Tensor]:
        """(grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps), w+- = w +- eps d_w.

        eps = 0.01 / ||d_w|| (DARTS). The weights are set from the exact backup for each side,
        so no rounding error accumulates.
        """
        norm = torch.cat([d.reshape(-1) for d in d_w]).norm()
        eps = 0.01 / norm.clamp_min(1e-12)
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, w0, d in zip(self.weights, backup, d_w):
                    w.copy_(w0 + sign * eps * d)
            sides.append(self._grad(train_loss_fn(), self.alphas))
        return [(p - n) / (2 * eps) for p, n in zip(*sides)]

    def _restore(self, backup: Sequence[torch.Tensor]) -> None:
        with torch.no_grad():
            for w, w0 in zip(self.weights, backup):
                w.copy_(w0)
