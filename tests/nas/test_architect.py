"""Alpha gradients of the bilevel problem: first order, second order, distributed averaging."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from fad.nas.architect import Architect
from fad.nas.search_cells import SearchTower, arch_parameters, weight_parameters


class TinySearchNet(nn.Module):
    """A search tower and a 1x1 predictor: the smallest model with real alpha/weight coupling."""

    def __init__(self):
        super().__init__()
        self.tower = SearchTower(in_channels=32, op_channels=32, num_nodes=2)
        self.pred = nn.Conv2d(64, 1, 1)

    def forward(self, x):
        return self.pred(self.tower(x))

    def arch_parameters(self):
        return arch_parameters(self)

    def weight_parameters(self):
        return weight_parameters(self)


class SmoothMixNet(nn.Module):
    """A smooth tiny bilevel problem: a softmax(alpha)-weighted mix of tanh layers.

    GroupNorm over 4x4 maps is too curved for DARTS' finite-difference step eps = 0.01 / ||v||
    (a probe of the search tower found the finite difference off by 46x at that eps and exact to
    1e-10 at 1e-4), so the second-order maths is checked on this smooth model; the architect
    itself does not depend on the model.
    """

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.randn(2, 3))
        self.ops = nn.ModuleList(nn.Linear(32, 32) for _ in range(3))
        self.ops2 = nn.ModuleList(nn.Linear(32, 32) for _ in range(3))
        self.pred = nn.Linear(32, 1)

    def forward(self, x):
        x = x.flatten(2).mean(-1)  # (N, 32)
        for ops, w in zip((self.ops, self.ops2), self.alpha.softmax(-1)):
            x = sum(wi * torch.tanh(op(x)) for wi, op in zip(w, ops))
        return self.pred(x)[:, :, None, None]

    def arch_parameters(self):
        return [self.alpha]

    def weight_parameters(self):
        return [p for p in self.parameters() if p is not self.alpha]


def _batch(seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 32, 4, 4, generator=g, dtype=dtype), torch.randn(
        2, 1, 4, 4, generator=g, dtype=dtype
    )


def _loss_fn(model, batch):
    x, y = batch
    return lambda: (model(x) - y).square().mean()


def test_first_order_gradient_is_taken_at_the_current_weights():
    torch.manual_seed(0)
    model = TinySearchNet()
    val = _batch(1)
    grad_at_start = torch.autograd.grad(_loss_fn(model, val)(), model.arch_parameters())
    w_optim = torch.optim.SGD(model.weight_parameters(), lr=0.05, momentum=0.9)
    for step in range(4):
        w_optim.zero_grad()
        _loss_fn(model, _batch(10 + step))().backward()
        w_optim.step()
    architect = Architect(
        arch_parameters=model.arch_parameters(), weight_parameters=model.weight_parameters()
    )
    architect.step(val_loss_fn=_loss_fn(model, val))
    expected = torch.autograd.grad(_loss_fn(model, val)(), model.arch_parameters())
    for a, e, s in zip(model.arch_parameters(), expected, grad_at_start):
        torch.testing.assert_close(a.grad, e)
        # The weights moved, so a gradient from the weights at start (the original code's stale
        # copy) would be different: this test tells the two apart.
        assert not torch.allclose(e, s, rtol=1e-3, atol=1e-7)


def _exact_unrolled_grad(model, train, val, xi, w_optim):
    """d/d alpha L_val(w - xi * (grad_w L_train(w, alpha) + m * buf + wd * w), alpha), exactly,
    with each weight's group's momentum m and weight decay wd."""
    weights, alphas = model.weight_parameters(), model.arch_parameters()
    g = torch.autograd.grad(_loss_fn(model, train)(), weights, create_graph=True)
    unrolled = {}
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {id(p): group for group in w_optim.param_groups for p in group["params"]}
    for w, gw in zip(weights, g):
        buf = w_optim.state[w].get("momentum_buffer")
        m, wd = groups[id(w)]["momentum"], groups[id(w)]["weight_decay"]
        step = gw + wd * w + (m * buf if buf is not None else 0)
        unrolled[names[id(w)]] = w - xi * step
    for a in alphas:
        unrolled[names[id(a)]] = a
    x, y = val
    out = torch.func.functional_call(model, unrolled, (x,))
    return torch.autograd.grad((out - y).square().mean(), alphas)


@pytest.mark.parametrize("with_momentum", [False, True])
def test_second_order_gradient_matches_exact_double_backward(with_momentum):
    torch.manual_seed(0)
    model = SmoothMixNet().double()
    momentum, wd, xi = 0.9, 1e-4, 0.05
    # Two groups of different weight decay, as detectron2's parameter groups: the virtual step
    # is SGD's next step of each weight's group.
    pred = list(model.pred.parameters())
    w_optim = torch.optim.SGD(
        [
            {"params": [p for p in model.weight_parameters() if all(p is not q for q in pred)]},
            {"params": pred, "weight_decay": 0.5},
        ],
        lr=xi,
        momentum=momentum if with_momentum else 0.0,
        weight_decay=wd,
    )
    for step in range(2):
        w_optim.zero_grad()
        _loss_fn(model, _batch(20 + step, torch.double))().backward()
        w_optim.step()
    train, val = _batch(1, torch.double), _batch(2, torch.double)
    train = (train[0], train[1].mean((2, 3), keepdim=True))
    val = (val[0], val[1].mean((2, 3), keepdim=True))
    exact = _exact_unrolled_grad(model, train, val, xi, w_optim)
    first_order = torch.autograd.grad(_loss_fn(model, val)(), model.arch_parameters())

    before = {k: v.clone() for k, v in model.state_dict().items()}
    architect = Architect(
        arch_parameters=model.arch_parameters(),
        weight_parameters=model.weight_parameters(),
        second_order=True,
        weight_optimizer=w_optim,
    )
    architect.step(val_loss_fn=_loss_fn(model, val), train_loss_fn=_loss_fn(model, train), xi=xi)

    got = torch.cat([a.grad.reshape(-1) for a in model.arch_parameters()])
    want = torch.cat([e.reshape(-1) for e in exact])
    assert ((got - want).norm() / want.norm()).item() < 1e-3
    # The unrolled gradient really differs from the first-order one at this xi.
    fo = torch.cat([f.reshape(-1) for f in first_order])
    assert ((fo - want).norm() / want.norm()).item() > 1e-2
    # Weights are restored bit for bit.
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_second_order_step_on_a_search_tower_restores_weights_exactly():
    torch.manual_seed(0)
    model = TinySearchNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    architect = Architect(
        arch_parameters=model.arch_parameters(),
        weight_parameters=model.weight_parameters(),
        second_order=True,
    )
    loss = architect.step(
        val_loss_fn=_loss_fn(model, _batch(1)), train_loss_fn=_loss_fn(model, _batch(2)), xi=0.01
    )
    assert torch.isfinite(loss)
    assert all(
        torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0 for a in model.arch_parameters()
    )
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_second_order_needs_the_training_loss():
    model = TinySearchNet()
    architect = Architect(
        arch_parameters=model.arch_parameters(),
        weight_parameters=model.weight_parameters(),
        second_order=True,
    )
    with pytest.raises(ValueError, match="train_loss_fn"):
        architect.step(val_loss_fn=_loss_fn(model, _batch(0)))


def test_grad_scaler_scales_the_alpha_gradients_and_not_the_returned_loss():
    torch.manual_seed(0)
    model = TinySearchNet()
    val = _loss_fn(model, _batch(1))
    kwargs = dict(arch_parameters=model.arch_parameters(), weight_parameters=[])
    plain_loss = Architect(**kwargs).step(val_loss_fn=val)
    plain = [a.grad.clone() for a in model.arch_parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    alpha_optim = torch.optim.SGD(model.arch_parameters(), lr=1.0)
    scaled_loss = Architect(**kwargs, grad_scaler=scaler).step(val_loss_fn=val)
    assert scaled_loss == plain_loss
    for a, g in zip(model.arch_parameters(), plain):
        torch.testing.assert_close(a.grad, g * 2.0**12)
    scaler.unscale_(alpha_optim)  # what scaler.step(alpha_optimizer) does first
    for a, g in zip(model.arch_parameters(), plain):
        torch.testing.assert_close(a.grad, g)


def test_grad_scaler_needs_the_first_order_step():
    model = TinySearchNet()
    with pytest.raises(ValueError, match="first-order"):
        Architect(
            arch_parameters=model.arch_parameters(),
            weight_parameters=model.weight_parameters(),
            second_order=True,
            grad_scaler=torch.amp.GradScaler("cpu"),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_worker(rank, world_size, port, results):
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(0)  # identical model on every rank, as DDP keeps it
        model = TinySearchNet()
        architect = Architect(
            arch_parameters=model.arch_parameters(), weight_parameters=model.weight_parameters()
        )
        val = _batch(100 + rank)  # each rank sees its own validation batch
        own_loss = _loss_fn(model, val)()
        own = torch.autograd.grad(own_loss, model.arch_parameters())
        loss = architect.step(val_loss_fn=_loss_fn(model, val))
        results[rank] = (
            [g.clone() for g in own],
            [a.grad.clone() for a in model.arch_parameters()],
            own_loss.item(),
            loss.item(),
        )
    finally:
        dist.destroy_process_group()


def test_alpha_gradients_and_loss_are_averaged_across_ranks():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_distributed_worker, args=(2, _free_port(), results), nprocs=2, join=True)
    (own0, avg0, own_loss0, loss0), (own1, avg1, own_loss1, loss1) = results[0], results[1]
    for g0, g1, a0, a1 in zip(own0, own1, avg0, avg1):
        assert not torch.allclose(g0, g1)
        torch.testing.assert_close(a0, (g0 + g1) / 2)
        assert torch.equal(a0, a1)
    # The loss too, so that every rank sees a non-finite one and stops before its alpha step.
    assert own_loss0 != own_loss1
    assert loss0 == loss1 == pytest.approx((own_loss0 + own_loss1) / 2)
