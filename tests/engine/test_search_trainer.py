"""SearchTrainer and its hooks in this process: failures, mixed precision, DDP, alphas."""

import logging
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.engine import HookBase  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from fad.engine import GenotypeWriter, SearchOptions, SearchTrainer  # noqa: E402
from fad.genotypes import load_genotype_file, random_genotype  # noqa: E402
from fad.modeling.cuda_graphs import CPU_REASON  # noqa: E402
from fad.nas.selection import Selection  # noqa: E402
from fad.nas.visualize import plot_alpha_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEARCH_CFG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
MASK_SEARCH_CFG = "configs/fad/search/fad_mask_rcnn_R_18_synthetic.py"


def _in_process_trainer(
    tmp_path,
    *,
    period=1,
    max_iter=4,
    log_period=10,
    warmup_iters=0,
    cuda_graphs=False,
    overrides=(),
    config=SEARCH_CFG,
):
    """The synthetic search built by search_net.py's own function, in this process, with the
    config ``overrides`` (``key=value``) applied."""
    sys.path.insert(0, str(ROOT))
    try:
        import search_net
    finally:
        sys.path.remove(str(ROOT))
    cfg = LazyConfig.apply_overrides(LazyConfig.load(str(ROOT / config)), list(overrides))
    cfg.train.output_dir = str(tmp_path)
    cfg.train.max_iter = max_iter
    cfg.train.checkpointer.period = period
    cfg.train.log_period = log_period
    cfg.search.warmup_iters = warmup_iters
    cfg.train.cuda_graphs = cuda_graphs
    return search_net.build_search_trainer(cfg)


def _rebuilt(built, model=None, cost_table=None, **options):
    """A SearchTrainer of the parts of ``built`` (its model unless ``model``), with ``options``
    (:class:`SearchOptions`' arguments)."""
    return SearchTrainer(
        built.model if model is None else model,
        built.data_loader,
        built.optimizer,
        arch_data_loader=built.arch_data_loader,
        arch_optimizer=built.arch_optimizer,
        options=SearchOptions(**options),
        cost_table=cost_table,
    )


def test_non_finite_weight_loss_stops_with_floating_point_error_and_keeps_checkpoints(
    tmp_path, synthetic_root
):
    # Every periodic checkpoint kept (the synthetic config keeps the last one only).
    trainer, _ = _in_process_trainer(tmp_path, overrides=["train.checkpointer.max_to_keep=100"])
    model = trainer.model
    forward = model.forward

    def poisoned(batched_inputs):
        losses = forward(batched_inputs)
        if trainer.iter == 2:
            losses["loss_fcos_cls"] = losses["loss_fcos_cls"] * float("nan")
        return losses

    model.forward = poisoned
    with pytest.raises(FloatingPointError, match="iteration=2"):
        trainer.train(0, 4)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    for name in ("model_0000000.pth", "model_0000001.pth"):
        ckpt = torch.load(tmp_path / name, map_location="cpu", weights_only=False)
        assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (tmp_path / "model_final.pth").exists()
    assert load_genotype_file(str(tmp_path / "genotype.log"))  # written at the last good period


def test_non_finite_alpha_loss_stops_before_the_alphas_move(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    module = trainer.unwrapped_model
    frozen = module.losses_with_frozen_features

    def poisoned(batched_inputs):
        losses = frozen(batched_inputs)
        if trainer.iter == 1:
            losses["loss_fcos_loc"] = losses["loss_fcos_loc"] * float("inf")
        return losses

    module.losses_with_frozen_features = poisoned
    snapshot = {}

    class Snapshot(HookBase):
        def after_step(self):
            snapshot["alphas"] = [a.detach().clone() for a in module.arch_parameters()]

    trainer.register_hooks([Snapshot()])
    with pytest.raises(FloatingPointError, match="Architecture loss .* iteration=1"):
        trainer.train(0, 4)
    for a, b in zip(module.arch_parameters(), snapshot["alphas"]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("config", [SEARCH_CFG, MASK_SEARCH_CFG], ids=["fcos", "mask_rcnn"])
def test_weight_step_computes_no_alpha_gradients(config, tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10, config=config)
    alphas = trainer.architect.alphas
    arch_step = trainer.architect.step
    after_arch_step = {}

    def recording_step(**kwargs):
        loss = arch_step(**kwargs)
        after_arch_step["grads"] = [a.grad.clone() for a in alphas]
        return loss

    trainer.architect.step = recording_step
    with EventStorage(0) as trainer.storage:
        trainer.run_step()
    # The weight step's backward added nothing to the alpha step's gradients, and the alphas
    # are trainable again for the next alpha step.
    for a, g in zip(alphas, after_arch_step["grads"]):
        assert torch.equal(a.grad, g)
        assert a.requires_grad


def test_first_order_alpha_step_runs_with_the_weights_frozen(tmp_path, synthetic_root, caplog):
    # With train.cuda_graphs on a CPU: the head runs eagerly, and the search log says why.
    with caplog.at_level(logging.WARNING, logger="fad.modeling.cuda_graphs"):
        trainer, _ = _in_process_trainer(tmp_path, period=10, cuda_graphs=True)
    assert [r.getMessage() for r in caplog.records if r.name == "fad.modeling.cuda_graphs"] == [
        CPU_REASON
    ]
    weights = trainer.unwrapped_model.weight_parameters()
    arch_step = trainer.architect.step
    during = {}

    def recording_step(**kwargs):
        during["any_weight_requires_grad"] = any(w.requires_grad for w in weights)
        loss = arch_step(**kwargs)
        during["any_weight_grad"] = any(w.grad is not None for w in weights)
        return loss

    trainer.architect.step = recording_step
    with EventStorage(0) as trainer.storage:
        trainer.run_step()
    # Frozen for the alpha step (a graphed head then records alpha gradients only), trainable
    # again for the weight step, which computed their gradients.
    assert during == {"any_weight_requires_grad": False, "any_weight_grad": False}
    assert all(w.requires_grad for w in weights)
    head = set(trainer.unwrapped_model.head.parameters())
    assert all(w.grad is not None for w in weights if w in head)
    assert all(a.grad is not None for a in trainer.architect.alphas)


def test_alpha_step_metrics_of_the_model_go_under_arch(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    with EventStorage(0) as trainer.storage:
        trainer.run_step()
        history = trainer.storage.histories()
    # FCOS logs its positive count in both steps: once each, apart.
    assert len(history["num_pos_anchors"].values()) == 1
    assert len(history["arch/num_pos_anchors"].values()) == 1
    assert {"arch_loss", "arch_time", "total_loss"} <= set(history)


def _nan_gradients(losses):
    """The losses plus a term whose value is 0 but whose gradient is NaN (sqrt'(0) * 0)."""
    first = next(iter(losses))
    return {**losses, "nan_grad": (0 * losses[first]).sqrt()}


def _step(trainer):
    """One iteration; returns whether the weights and whether the alphas moved."""
    module = trainer.unwrapped_model
    weights = [p.detach().clone() for p in module.weight_parameters()]
    alphas = [a.detach().clone() for a in module.arch_parameters()]
    with EventStorage(trainer.iter) as trainer.storage:
        trainer.run_step()
    trainer.iter += 1
    return (
        any(not torch.equal(a, b) for a, b in zip(module.weight_parameters(), weights)),
        any(not torch.equal(a, b) for a, b in zip(module.arch_parameters(), alphas)),
    )


def _autocast_record(module, device_type):
    """Records the dtypes of the class score conv's outputs (a conv: low precision under
    autocast on every device), and whether autocast is on in their backward."""
    seen = {"dtypes": set(), "backward_autocast": set()}

    def record(m, i, output):
        seen["dtypes"].add(output.dtype)
        output.register_hook(
            lambda g: seen["backward_autocast"].add(torch.is_autocast_enabled(device_type))
        )

    module.head.cls_score.register_forward_hook(record)
    return seen


def test_amp_search_on_cpu_autocasts_both_forwards_to_bfloat16(tmp_path, synthetic_root):
    built, _ = _in_process_trainer(tmp_path, period=10)
    trainer = _rebuilt(built, clip_grad_norm=20.0, amp=True)
    seen = _autocast_record(trainer.unwrapped_model, "cpu")
    assert _step(trainer) == (True, True)
    # Both steps' forwards in bfloat16, their backwards outside autocast; no scaler on a CPU.
    assert seen == {"dtypes": {torch.bfloat16}, "backward_autocast": {False}}
    assert not trainer.grad_scaler.is_enabled() and not trainer.arch_grad_scaler.is_enabled()
    # A full-precision run's checkpoint (no scaler state) resumes with mixed precision.
    state = built.state_dict()
    for key in ("grad_scaler", "arch_grad_scaler"):
        state.pop(key, None)
    trainer.load_state_dict(state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 GradScalers need a GPU")
def test_amp_search_on_a_gpu_skips_the_steps_whose_gradients_are_not_finite(
    tmp_path, synthetic_root
):
    built, _ = _in_process_trainer(tmp_path, period=10, overrides=["train.device=cuda"])
    trainer = _rebuilt(built, clip_grad_norm=20.0, amp=True)
    # Scalers that start low: at the default 2**16, float16 gradients may overflow without the
    # poison, in the first steps of a run.
    scalers = [torch.amp.GradScaler("cuda", init_scale=2.0**10) for _ in range(2)]
    trainer.grad_scaler, trainer.arch_grad_scaler = scalers
    trainer.architect.grad_scaler = scalers[1]
    scale = 2.0**10
    module = trainer.unwrapped_model
    seen = _autocast_record(module, "cuda")
    forward, frozen = module.forward, module.losses_with_frozen_features
    poison = {"forward": False, "frozen": False}
    module.forward = lambda x: (_nan_gradients if poison["forward"] else dict)(forward(x))
    module.losses_with_frozen_features = lambda x: (_nan_gradients if poison["frozen"] else dict)(
        frozen(x)
    )

    # NaN gradients, finite losses: the scaler skips that step and halves its scale.
    poison.update(forward=True)
    assert _step(trainer) == (False, True)
    assert [s.get_scale() for s in scalers] == [scale / 2, scale]
    poison.update(forward=False, frozen=True)
    assert _step(trainer) == (True, False)
    assert [s.get_scale() for s in scalers] == [scale / 2, scale / 2]
    poison.update(frozen=False)
    assert _step(trainer) == (True, True)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert seen == {"dtypes": {torch.float16}, "backward_autocast": {False}}

    state = trainer.state_dict()
    for scaler in scalers:
        scaler.update(scale * 4)
    trainer.load_state_dict(state)
    assert [s.get_scale() for s in scalers] == [scale / 2, scale / 2]


def test_weight_gradients_are_clipped_to_clip_grad_norm_before_the_step(tmp_path, synthetic_root):
    built, _ = _in_process_trainer(tmp_path, period=10)
    clip = 1e-3
    trainer = _rebuilt(built, clip_grad_norm=clip)
    weights = trainer.unwrapped_model.weight_parameters()
    seen = {}

    class Norm(HookBase):
        def after_backward(self):  # after SearchTrainer's clip, before the step
            seen["norm"] = torch.linalg.vector_norm(
                torch.stack(
                    [torch.linalg.vector_norm(w.grad) for w in weights if w.grad is not None]
                )
            ).item()

    trainer.register_hooks([Norm()])
    _step(trainer)
    assert seen["norm"] == pytest.approx(clip, rel=1e-3)
    assert trainer.storage.history("grad_norm").latest() > 100 * clip  # the norm before the clip


def test_second_order_virtual_step_and_weight_step_take_the_same_batch(tmp_path, synthetic_root):
    built, _ = _in_process_trainer(tmp_path, period=10)
    trainer = _rebuilt(built, second_order=True)
    module = trainer.unwrapped_model
    forward, frozen = module.forward, module.losses_with_frozen_features
    batches = {"frozen": [], "forward": []}

    def recording(name, fn):
        def call(x):
            batches[name].append(x)
            return fn(x)

        return call

    module.forward = recording("forward", forward)
    module.losses_with_frozen_features = recording("frozen", frozen)
    for _ in range(2):
        assert _step(trainer) == (True, True)
    # Per iteration: the training batch (the virtual step), the validation batch, the training
    # batch twice (the Hessian term's two sides); the weight step then takes that training batch.
    train, arch = batches["frozen"][0::4], batches["frozen"][1::4]
    assert all(x is y for i in (2, 3) for x, y in zip(batches["frozen"][i::4], train))
    assert all(x is y for x, y in zip(batches["forward"], train))
    assert len(batches["forward"]) == 2 and train[0] is not train[1]
    assert not any(x is y for x in arch for y in train)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(second_order=True, amp=True), "first-order"),
        (dict(cost_weight=0.5), "a cost_weight > 0 needs the cost_table"),
        (dict(cost_weight=-0.5), "search.cost_weight must be a finite number >= 0, got -0.5"),
        (dict(cost_weight=float("inf")), "finite number >= 0"),
        (dict(cost_weight="0.1"), "search.cost_weight must be a finite number >= 0, got '0.1'"),
        (dict(cost="Flops"), "search.cost must be 'flops' or 'latency', got 'Flops'"),
        (dict(clip_grad_norm=-1.0), "search.clip_grad_norm must be a finite number >= 0"),
        (dict(warmup_iters=-1), "search.warmup_iters must be an int >= 0, got -1"),
    ],
    ids=[
        "amp_with_second_order",
        "cost_weight_without_table",
        "negative_cost_weight",
        "infinite_cost_weight",
        "cost_weight_as_a_string",
        "unknown_cost",
        "negative_clip",
        "negative_warmup",
    ],
)
def test_search_trainer_refuses_options_that_cannot_work(
    tmp_path, synthetic_root, options, message
):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    assert trainer.options.cost_weight == 0 and trainer.cost_table is None  # the paper's search
    with pytest.raises(ValueError, match=message):
        _rebuilt(trainer, **options)


def test_search_trainer_refuses_a_ddp_model_that_holds_the_alphas(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        # Plain DDP would wait for alpha gradients that the weight step does not compute.
        model = instantiate(LazyConfig.load(str(ROOT / SEARCH_CFG)).model)
        plain = torch.nn.parallel.DistributedDataParallel(model)
        with pytest.raises(ValueError, match="create_ddp_model_for"):
            _rebuilt(trainer, plain)
    finally:
        dist.destroy_process_group()


def test_genotype_writer_refuses_alphas_that_differ_across_ranks(
    tmp_path, synthetic_root, monkeypatch
):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    writer = next(h for h in trainer._hooks if isinstance(h, GenotypeWriter))
    monkeypatch.setattr("fad.engine.hooks.comm.all_gather", lambda x: [x, "0" * 40])
    with EventStorage(0) as trainer.storage:
        with pytest.raises(RuntimeError, match="differ across ranks"):
            writer.write(1)
    assert not (tmp_path / "genotype.log").exists()


def test_a_search_that_fails_in_its_last_iteration_writes_no_final_genotypes(
    tmp_path, synthetic_root, monkeypatch
):
    trainer, _ = _in_process_trainer(tmp_path, period=10, max_iter=2)
    run_step = trainer.run_step

    def fail_in_the_last_iteration():
        if trainer.iter == 1:
            raise RuntimeError("stop")
        run_step()

    monkeypatch.setattr(trainer, "run_step", fail_in_the_last_iteration)
    with pytest.raises(RuntimeError, match="stop"):
        trainer.train(0, 2)
    assert not (tmp_path / "genotype.log").exists()


def test_failing_plots_cost_the_plots_not_the_search(tmp_path, synthetic_root, monkeypatch, caplog):
    trainer, _ = _in_process_trainer(tmp_path, period=10, max_iter=1)

    def broken_dot(*args, **kwargs):
        raise RuntimeError("dot -Tpng failed")

    def broken_matplotlib(*args, **kwargs):
        raise ValueError("no backend")

    monkeypatch.setattr("fad.engine.hooks.plot_genotype", broken_dot)
    monkeypatch.setattr("fad.engine.hooks.plot_alpha_history", broken_matplotlib)
    with caplog.at_level(logging.WARNING, logger="fad.engine.hooks"):
        trainer.train(0, 1)
    load_genotype_file(str(tmp_path / "genotype.log"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "fad.engine.hooks"]
    assert warnings == [
        *(f"Could not plot the {tower} tower's cell: dot -Tpng failed" for tower in ("box", "cls")),
        "Could not plot alphas.png: no backend",
    ]


def _softmax_weights(module):
    return {
        name: torch.cat([a.detach().softmax(-1) for a in tower.alphas])
        for name, tower in module.search_towers().items()
    }


def test_alphas_png_plots_the_weights_sampled_every_log_period_and_the_final_ones(
    tmp_path, synthetic_root, monkeypatch
):
    trainer, _ = _in_process_trainer(tmp_path, period=10, max_iter=3, log_period=2)
    module = trainer.unwrapped_model
    init = _softmax_weights(module)
    plots = []

    def recorded(iterations, weights, path, **kwargs):
        plots.append((iterations, weights, kwargs))
        return plot_alpha_history(iterations, weights, path, **kwargs)

    monkeypatch.setattr("fad.engine.hooks.plot_alpha_history", recorded)
    trainer.train(0, 3)
    assert (tmp_path / "alphas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [(iterations, weights, kwargs)] = plots  # written once, at the end
    assert iterations == [0, 2, 3]  # before iterations 0 and 2, and the final weights
    final = _softmax_weights(module)
    for tower in ("box", "cls"):
        assert torch.equal(weights[tower][0], init[tower])
        assert torch.equal(weights[tower][-1], final[tower])
        assert not torch.equal(weights[tower][1], weights[tower][0])  # the alphas moved
    assert kwargs["genotypes"] == module.genotypes()

    writer = next(h for h in trainer._hooks if isinstance(h, GenotypeWriter))
    state = writer.state_dict()
    assert state["iterations"] == [0, 2]
    restored = GenotypeWriter(output_dir=str(tmp_path), period=10)
    assert restored.state_dict() == {}  # nothing sampled: the checkpoint holds no entry
    restored.load_state_dict(state)
    again = restored.state_dict()
    assert again["iterations"] == [0, 2]
    assert all(torch.equal(again["weights"][t], state["weights"][t]) for t in ("box", "cls"))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(genotype_rank="Raw"), "search.genotype_rank must be 'softmax' or 'raw'"),
        (dict(history_period=0), "train.log_period must be an int >= 1, got 0"),
        (dict(selection="pt"), "search.selection must be 'alpha' or 'perturbation', got 'pt'"),
        (dict(selection_batches=0), "search.selection_batches must be an int >= 1, got 0"),
        (dict(selection_tune_iters=-1), "search.selection_tune_iters must be an int >= 0"),
        (dict(selection_tune_iters=1.5), "search.selection_tune_iters must be an int >= 0"),
    ],
)
def test_search_options_refuse_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        SearchOptions(**options)


def test_perturbation_selection_measures_the_supernet_without_changing_it(
    tmp_path, synthetic_root, monkeypatch
):
    """The engine's part of DARTS-PT (the selection itself: tests/nas/test_selection.py): every
    validation loss is the mean over the same arch batches, with the same random draws,
    averaged across ranks, and leaves the BatchNorm statistics and the alphas as they were."""
    built, _ = _in_process_trainer(tmp_path, period=10)
    trainer = _rebuilt(built, selection="perturbation", selection_batches=2)
    module = trainer.unwrapped_model
    buffers = [b.clone() for b in module.buffers()]
    alphas = [a.detach().clone() for a in module.arch_parameters()]
    picked = {}

    def select(tower, *, val_loss_fn, tune):
        assert tune is None  # selection_tune_iters=0
        first, second = float(val_loss_fn()), float(val_loss_fn())
        assert first == second > 0  # the same batches and draws; nothing trained in between
        row = tower.alphas[0][0].detach().clone()
        with torch.no_grad():
            tower.alphas[0][0, 0] += 1.0  # a removal: the loss must see it
        assert float(val_loss_fn()) != first
        with torch.no_grad():
            tower.alphas[0][0] = row
        # Two ranks: all_reduce sums this rank's loss and the other's (here: 1.0 higher).
        with pytest.MonkeyPatch.context() as two_ranks:
            two_ranks.setattr("fad.engine.search_trainer.comm.get_world_size", lambda: 2)
            two_ranks.setattr(torch.distributed, "all_reduce", lambda t: t.add_(t + 1.0))
            assert float(val_loss_fn()) == pytest.approx(first + 0.5)
        picked[tower] = random_genotype(seed=len(picked))
        return Selection(picked[tower], [], [], first, 4, 0.0)

    monkeypatch.setattr("fad.engine.search_trainer.perturbation_genotype", select)
    with EventStorage(0):
        genotypes = trainer.genotypes()
    towers = module.search_towers()
    assert genotypes == {name: picked[tower] for name, tower in towers.items()}
    assert all(torch.equal(a, b) for a, b in zip(module.buffers(), buffers))
    assert all(torch.equal(a, b) for a, b in zip(module.arch_parameters(), alphas))


def test_warmup_takes_weight_steps_only_before_the_first_alpha_step(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10, max_iter=3, warmup_iters=2)
    module = trainer.unwrapped_model
    init = [a.detach().clone() for a in module.arch_parameters()]
    weights = [p.detach().clone() for p in module.weight_parameters()]
    alphas_after = {}

    class Snapshot(HookBase):
        def after_step(self):
            alphas_after[self.trainer.iter] = [a.detach().clone() for a in module.arch_parameters()]

    trainer.register_hooks([Snapshot()])
    trainer.train(0, 3)
    for it in (0, 1):  # the warm-up: the alphas stay, the weights learn
        assert all(torch.equal(a, b) for a, b in zip(alphas_after[it], init))
    assert not all(torch.equal(a, b) for a, b in zip(alphas_after[2], init))
    assert not all(torch.equal(p, w) for p, w in zip(module.weight_parameters(), weights))
    adam = trainer.arch_optimizer.state_dict()["state"]
    assert all(int(s["step"]) == 1 for s in adam.values())  # one alpha step, in iteration 2


def test_a_large_cost_weight_derives_the_cheapest_candidate_on_every_edge(tmp_path, synthetic_root):
    """The cost term outweighs the detection loss: weight drains to ``none``, and of the real
    candidates, which the derivation chooses from, the cheapest keeps the most weight. One
    image per batch, and alphas that move fast (Adam lr 0.1), so that a few steps decide."""
    fast = ["dataloader.train.total_batch_size=1", "dataloader.arch.total_batch_size=1"]
    fast.append("arch_optimizer.lr=0.1")
    trainer, _ = _in_process_trainer(
        tmp_path, period=8, max_iter=8, overrides=[*fast, "search.cost_weight=100"]
    )
    trainer.train(0, 8)
    table = trainer.cost_table
    cheapest = table.ops[int(table.costs[:-1].argmin())]
    assert cheapest == "sinSep_conv_3x3"
    genotypes = trainer.unwrapped_model.genotypes()
    assert all(op == cheapest for g in genotypes.values() for node in g.normal for op, _ in node)
    # The genotype writer logged the costs at the end: the derived towers' ops are the cheapest
    # (2 towers of 6 edges), and the expected cost fell from that of near-uniform alphas.
    history = trainer.storage.history
    assert history("cost/derived_gflops").latest() == pytest.approx(
        12 * table.costs[table.ops.index(cheapest)].item()
    )
    assert history("cost/expected").latest() < 18 * table.normalised.mean().item()


def test_second_order_training_losses_of_a_mask_search_draw_the_same_rois(tmp_path, synthetic_root):
    """Mask R-CNN samples anchors and RoIs at random: the second order's training losses at
    w+ and w- must see the same sample, or their difference measures the draw."""
    trainer, _ = _in_process_trainer(
        tmp_path, period=10, config=MASK_SEARCH_CFG, overrides=["search.second_order=True"]
    )
    closures = []
    step = trainer.architect.step

    def recording_step(**kwargs):
        closures.append(kwargs["train_loss_fn"])
        return step(**kwargs)

    trainer.architect.step = recording_step
    with EventStorage(0) as trainer.storage:
        trainer.run_step()
        (train_loss,) = closures
        with torch.no_grad():  # the same weights twice: only the draw could differ
            first = float(train_loss())
            torch.rand(8)  # as the virtual step and the validation loss draw in between
            assert float(train_loss()) == first
    assert all(
        a.grad is not None and torch.isfinite(a.grad).all() for a in trainer.architect.alphas
    )
