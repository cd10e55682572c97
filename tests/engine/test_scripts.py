"""search_net.py and train_net.py as a user runs them, on the synthetic data, on CPU.

Every run is a few iterations of the CPU-sized configs; the scripts run in subprocesses, like
from a shell, except the failure-injection tests, which drive the trainer in-process.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.engine import HookBase  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from fad.data.synthetic import generate_synthetic_coco  # noqa: E402
from fad.engine import AtomicCheckpointer, GenotypeWriter, SearchTrainer  # noqa: E402
from fad.genotypes import FAD_PAPER_BOX, Genotype, derive_genotype, load_genotype_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEARCH_CFG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
AUGMENT_CFG = "configs/fad/augment/fad_fcos_R_18_synthetic.py"
TINY = ["train.max_iter=4", "train.checkpointer.period=2", "train.log_period=1"]
AP_ROW = re.compile(r"copypaste: ([-\d.naN]+(?:,[-\d.naN]+){5})\s*$", re.M)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The scripts' environment: the synthetic splits generated once, in a temporary root."""
    env = dict(os.environ)
    env["FAD_SYNTHETIC_ROOT"] = str(tmp_path_factory.mktemp("synthetic"))
    env["DETECTRON2_DATASETS"] = str(tmp_path_factory.mktemp("no_datasets"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(script, *args, env, expect_rc=0):
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        # A bad-input case that slipped through would train for minutes: fail it fast.
        timeout=300 if expect_rc else 600,
    )
    assert proc.returncode == expect_rc, (
        f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _alphas(state_dict):
    """The six alpha tensors of a search checkpoint's model, box tower first, node order."""
    return [
        state_dict[f"head.{tower}.alphas.{i}"]
        for tower in ("bbox_tower", "cls_tower")
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def search_run(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    proc = run(
        "search_net.py", "--config-file", SEARCH_CFG, *TINY, f"train.output_dir={out}", env=env
    )
    return out, proc


def test_search_writes_genotypes_plots_events_and_a_checkpoint_with_alphas(search_run):
    out, _ = search_run
    box, cls = load_genotype_file(str(out / "genotype.log"), num_nodes=3)
    for tower in ("box", "cls"):
        assert "->" in (out / f"cell_{tower}.dot").read_text()
        if shutil.which("dot"):
            assert (out / f"cell_{tower}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(out.glob("events.out.tfevents.*"))
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert any("alpha/box/std_conv_3x3" in m and "arch_loss" in m for m in metrics)

    ckpt = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    alphas = _alphas(ckpt["model"])
    assert [tuple(a.shape) for a in alphas] == [(2, 11), (3, 11), (4, 11)] * 2
    # genotype.log is the derivation of the saved alphas, and Adam took one step per iteration.
    assert (derive_genotype(alphas[:3]), derive_genotype(alphas[3:])) == (box, cls)
    adam = ckpt["trainer"]["arch_optimizer"]["state"]
    assert len(adam) == 6 and all(int(s["step"]) == 4 for s in adam.values())
    assert ckpt["iteration"] == 3
    log = (out / "log.txt").read_text()
    assert str(box) in log and str(cls) in log


def test_search_with_amp_autocasts_on_cpu_to_bfloat16(env, tmp_path):
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "train.max_iter=2",
        "train.amp.enabled=True",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    assert "Mixed precision: autocast to torch.bfloat16" in (tmp_path / "log.txt").read_text()
    ckpt = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert all(a.dtype == torch.float32 and torch.isfinite(a).all() for a in _alphas(ckpt["model"]))
    load_genotype_file(str(tmp_path / "genotype.log"))


def test_search_on_two_processes_keeps_alphas_identical(env, tmp_path):
    env = {**env, "OMP_NUM_THREADS": "1"}
    run(
        "search_net.py",
        "--num-gpus",
        2,
        "--config-file",
        SEARCH_CFG,
        *TINY,
        f"train.output_dir={tmp_path}",
        env=env,
    )
    log = (tmp_path / "log.txt").read_text()
    # The hook compares the ranks' alpha checksums at every write and raises if they differ.
    assert len(re.findall(r"Architecture weights identical on 2 rank\(s\)", log)) == 2
    load_genotype_file(str(tmp_path / "genotype.log"))


def test_resume_continues_with_saved_alphas_and_alpha_optimizer_state(env, tmp_path):
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "train.max_iter=3",
        "train.checkpointer.period=3",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    stopped = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert stopped["iteration"] == 2
    checksum = re.findall(r"checksum ([0-9a-f]{40})", (tmp_path / "log.txt").read_text())[-1]

    proc = run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        "--resume",
        *TINY,
        "train.max_iter=6",
        "train.checkpointer.period=3",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    log = proc.stderr + proc.stdout
    assert f"Resuming at iteration 3, alpha checksum {checksum}" in log
    assert "Starting training from iteration 3" in log
    final = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == 5
    adam = final["trainer"]["arch_optimizer"]["state"]
    assert all(int(s["step"]) == 6 for s in adam.values())  # 3 before the stop + 3 after
    assert not all(
        torch.equal(a, b) for a, b in zip(_alphas(stopped["model"]), _alphas(final["model"]))
    )


def _ap_rows(text):
    return [tuple(float(v) for v in row.split(",")) for row in AP_ROW.findall(text)]


def test_train_with_genotype_file_evaluates_and_eval_only_rebuilds_the_model(
    env, search_run, tmp_path
):
    search_out, _ = search_run
    genotype_file = search_out / "genotype.log"
    box, cls = load_genotype_file(str(genotype_file))
    proc = run(
        "train_net.py",
        "--config-file",
        AUGMENT_CFG,
        "--genotype-file",
        genotype_file,
        *TINY,
        "train.eval_period=4",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    trained = _ap_rows(proc.stderr + proc.stdout)
    assert len(trained) == 1 and len(trained[0]) == 6

    saved = LazyConfig.load(str(tmp_path / "config.yaml"))
    assert Genotype.from_str(saved.model.head.box_genotype) == box
    assert Genotype.from_str(saved.model.head.cls_genotype) == cls

    proc = run(
        "train_net.py",
        "--config-file",
        tmp_path / "config.yaml",
        "--eval-only",
        f"train.init_checkpoint={tmp_path / 'model_final.pth'}",
        f"train.output_dir={tmp_path / 'eval'}",
        env=env,
    )
    out = proc.stderr + proc.stdout
    assert "not found in the checkpoint" not in out and "shape mismatch" not in out.lower()
    evaluated = _ap_rows(out)
    assert len(evaluated) == 1
    assert evaluated[0] == pytest.approx(trained[0], nan_ok=True)


def test_eval_only_writes_the_genotypes_of_a_search_checkpoint(env, search_run, tmp_path):
    search_out, _ = search_run
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        "--eval-only",
        f"train.init_checkpoint={search_out / 'model_final.pth'}",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    exported = load_genotype_file(str(tmp_path / "genotype_model_final.log"))
    assert exported == load_genotype_file(str(search_out / "genotype.log"))


def test_search_of_one_tower_and_training_from_its_genotype_file(env, tmp_path):
    search_out = tmp_path / "search"
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "model.head.towers=[cls]",
        f"train.output_dir={search_out}",
        env=env,
    )
    genotype_file = search_out / "genotype.log"
    assert genotype_file.read_text().splitlines()[0] == "None"
    box, cls = load_genotype_file(str(genotype_file))
    assert box is None and isinstance(cls, Genotype)
    assert (search_out / "cell_cls.png").exists() and not (search_out / "cell_box.png").exists()

    run(
        "train_net.py",
        "--config-file",
        AUGMENT_CFG,
        "--genotype-file",
        genotype_file,
        "train.max_iter=1",
        f"train.output_dir={tmp_path / 'train'}",
        env=env,
    )
    saved = LazyConfig.load(str(tmp_path / "train" / "config.yaml"))
    assert list(saved.model.head.towers) == ["cls"] and saved.model.head.box_genotype is None
    assert Genotype.from_str(saved.model.head.cls_genotype) == cls


def test_register_coco_in_both_scripts(env, tmp_path):
    data = {}
    for name, seed in (("mine_train", 5), ("mine_val", 6)):
        json_file = generate_synthetic_coco(
            output_dir=str(tmp_path / name), num_images=12, seed=seed
        )
        data[name] = ["--register-coco", name, json_file, tmp_path / name / "images"]
    register = data["mine_train"] + data["mine_val"]
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *register,
        *TINY,
        "train.max_iter=2",
        "dataloader.train.dataset.names=mine_train",
        "dataloader.arch.dataset.names=mine_val",
        f"train.output_dir={tmp_path / 'search'}",
        env=env,
    )
    load_genotype_file(str(tmp_path / "search" / "genotype.log"))
    proc = run(
        "train_net.py",
        "--config-file",
        AUGMENT_CFG,
        *register,
        *TINY,
        "train.max_iter=2",
        "train.eval_period=2",
        "dataloader.train.dataset.names=mine_train",
        "dataloader.test.dataset.names=mine_val",
        f"train.output_dir={tmp_path / 'train'}",
        env=env,
    )
    assert len(_ap_rows(proc.stderr + proc.stdout)) == 1


def _tree_digest(path: Path) -> dict:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


BAD_GENOTYPE = (
    "Genotype(normal=[[('bogus_op', 0), ('std_conv_3x3', 1)]], normal_concat=range(2, 3))"
)
FOUR_NODES = (
    "Genotype(normal=[[('std_conv_3x3', 0), ('std_conv_3x3', 1)], [('std_conv_3x3', 0), "
    "('std_conv_3x3', 1)], [('std_conv_3x3', 0), ('std_conv_3x3', 1)], [('std_conv_3x3', 0), "
    "('std_conv_3x3', 1)]], normal_concat=range(2, 6))"
)


@pytest.mark.parametrize(
    "case",
    [
        "malformed_genotype",
        "missing_genotype",
        "genotype_file_is_a_directory",
        "unfit_genotype",
        "missing_json",
        "missing_images",
        "missing_builtin",
        "same_splits",
        "overlapping_splits",
        "bad_genotype_rank",
        "wrong_num_classes",
        "bad_override",
        "amp_second_order",
        "amp_training_on_cpu",
        "eval_only_from_scratch",
        "eval_only_without_alphas",
    ],
)
def test_bad_input_ends_with_one_error_line_and_loses_nothing(case, env, search_run, tmp_path):
    search_out, _ = search_run
    out = tmp_path / "previous_run"
    shutil.copytree(search_out, out)
    before = _tree_digest(out)
    json_file = generate_synthetic_coco(output_dir=str(tmp_path / "mine"), num_images=4, seed=1)
    script, cfg, extra, message = "train_net.py", AUGMENT_CFG, [], None
    if case == "malformed_genotype":
        bad = tmp_path / "bad.log"
        bad.write_text(f"# searched\n{FAD_PAPER_BOX}\n{BAD_GENOTYPE}\n")
        extra, message = ["--genotype-file", bad], rf"{bad} line 3: .*unknown op 'bogus_op'"
    elif case == "missing_genotype":
        extra, message = ["--genotype-file", tmp_path / "nope.log"], "nope.log"
    elif case == "genotype_file_is_a_directory":
        extra, message = ["--genotype-file", tmp_path], f"Is a directory: '{tmp_path}'"
    elif case == "unfit_genotype":
        unfit = tmp_path / "unfit.log"
        unfit.write_text(f"{FOUR_NODES}\n{FAD_PAPER_BOX}\n")
        extra, message = ["--genotype-file", unfit], "box_genotype does not fit .* expected 3 nodes"
    elif case == "missing_json":
        extra = ["--register-coco", "x", tmp_path / "gone.json", tmp_path / "mine" / "images"]
        message = "gone.json"
    elif case == "missing_images":
        extra = ["--register-coco", "x", json_file, tmp_path / "no_images"]
        message = "no_images"
    elif case == "missing_builtin":
        extra, message = ["dataloader.train.dataset.names=coco_2017_train"], "coco_2017_train"
    elif case == "same_splits":
        script, cfg = "search_net.py", SEARCH_CFG
        extra = ["dataloader.arch.dataset.names=fad_synthetic_train"]
        message = "read the same datasets"
    elif case == "overlapping_splits":
        script, cfg = "search_net.py", SEARCH_CFG
        extra = ["dataloader.train.dataset.names=[fad_synthetic_train,fad_synthetic_arch]"]
        message = "read the same datasets .*'fad_synthetic_arch' and 'fad_synthetic_arch'"
    elif case == "bad_genotype_rank":
        script, cfg = "search_net.py", SEARCH_CFG
        extra = ["search.genotype_rank=Raw"]
        message = "search.genotype_rank must be 'softmax' or 'raw', got 'Raw'"
    elif case == "wrong_num_classes":
        extra = [
            "--register-coco",
            "x",
            json_file,
            tmp_path / "mine" / "images",
            "dataloader.train.dataset.names=x",
            "model.num_classes=5",
        ]
        message = "has 3 classes but model.num_classes is 5"
    elif case == "bad_override":
        extra, message = ["train.max_iter=[1,"], "cannot apply the overrides"
    elif case == "amp_second_order":
        script, cfg = "search_net.py", SEARCH_CFG
        extra = ["train.amp.enabled=True", "search.second_order=True"]
        message = "needs the first-order search"
    elif case == "amp_training_on_cpu":
        extra, message = ["train.amp.enabled=True"], "needs a CUDA train.device, not 'cpu'"
    elif case == "eval_only_from_scratch":
        script, cfg = "search_net.py", SEARCH_CFG
        extra, message = ["--eval-only"], "--eval-only needs train.init_checkpoint"
    elif case == "eval_only_without_alphas":
        script, cfg = "search_net.py", SEARCH_CFG
        weights = tmp_path / "weights_only.pth"
        state = torch.load(search_out / "model_final.pth", map_location="cpu", weights_only=False)
        torch.save(
            {"model": {k: v for k, v in state["model"].items() if "alphas" not in k}}, weights
        )
        extra = ["--eval-only", f"train.init_checkpoint={weights}"]
        message = r"weights_only.pth holds no architecture weights \(head.bbox_tower.alphas.0, "
    else:
        raise AssertionError(f"unknown case {case}")
    proc = run(
        script, "--config-file", cfg, *extra, f"train.output_dir={out}", env=env, expect_rc=2
    )
    # stderr may also hold import-time warnings of torch and detectron2; the error is one line,
    # the last one.
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{script}: error: ")]
    assert errors == lines[-1:], proc.stderr
    assert re.search(message, errors[0]), errors[0]
    assert _tree_digest(out) == before


def _in_process_trainer(tmp_path, *, period=1, max_iter=4):
    """The synthetic search built by search_net.py's own function, in this process."""
    sys.path.insert(0, str(ROOT))
    try:
        import search_net
    finally:
        sys.path.remove(str(ROOT))
    cfg = LazyConfig.load(str(ROOT / SEARCH_CFG))
    cfg.train.output_dir = str(tmp_path)
    cfg.train.max_iter = max_iter
    cfg.train.checkpointer.period = period
    return search_net.build_search_trainer(cfg)


@pytest.fixture
def synthetic_root(env, monkeypatch):
    monkeypatch.setenv("FAD_SYNTHETIC_ROOT", env["FAD_SYNTHETIC_ROOT"])


def test_non_finite_weight_loss_stops_with_floating_point_error_and_keeps_checkpoints(
    tmp_path, synthetic_root
):
    trainer, _ = _in_process_trainer(tmp_path)
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


def test_weight_step_computes_no_alpha_gradients(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
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


def test_amp_search_skips_the_steps_whose_gradients_are_not_finite(tmp_path, synthetic_root):
    built, _ = _in_process_trainer(tmp_path, period=10)
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10) for _ in range(2)]
    trainer = SearchTrainer(
        built.model,
        built.data_loader,
        built.optimizer,
        arch_data_loader=built.arch_data_loader,
        arch_optimizer=built.arch_optimizer,
        clip_grad_norm=20.0,
        amp_precision=torch.bfloat16,
        grad_scaler=scalers[0],
        arch_grad_scaler=scalers[1],
    )
    module = trainer.unwrapped_model
    forward, frozen = module.forward, module.losses_with_frozen_features
    poison = {"forward": False, "frozen": False}
    module.forward = lambda x: (_nan_gradients if poison["forward"] else dict)(forward(x))
    module.losses_with_frozen_features = lambda x: (_nan_gradients if poison["frozen"] else dict)(
        frozen(x)
    )
    dtypes = []
    module.head.cls_tower.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))

    def step(**which):
        poison.update(which)
        weights = [p.detach().clone() for p in trainer._weights]
        alphas = [a.detach().clone() for a in module.arch_parameters()]
        with EventStorage(trainer.iter) as trainer.storage:
            trainer.run_step()
        trainer.iter += 1
        return (
            any(not torch.equal(a, b) for a, b in zip(trainer._weights, weights)),
            any(not torch.equal(a, b) for a, b in zip(module.arch_parameters(), alphas)),
        )

    # NaN gradients, finite losses: the scaler skips that step and halves its scale.
    assert step(forward=True, frozen=False) == (False, True)
    assert (scalers[0].get_scale(), scalers[1].get_scale()) == (2.0**9, 2.0**10)
    assert step(forward=False, frozen=True) == (True, False)
    assert (scalers[0].get_scale(), scalers[1].get_scale()) == (2.0**9, 2.0**9)
    assert step(forward=False, frozen=False) == (True, True)
    assert all(torch.isfinite(p).all() for p in trainer._weights + module.arch_parameters())
    assert dtypes and set(dtypes) == {torch.bfloat16}  # both steps ran under autocast

    state = trainer.state_dict()
    assert state["grad_scaler"]["scale"] == state["arch_grad_scaler"]["scale"] == 2.0**9
    for scaler in scalers:
        scaler.update(2.0**10)
    trainer.load_state_dict(state)
    assert (scalers[0].get_scale(), scalers[1].get_scale()) == (2.0**9, 2.0**9)


def test_search_trainer_refuses_amp_with_second_order(tmp_path, synthetic_root):
    trainer, _ = _in_process_trainer(tmp_path, period=10)
    with pytest.raises(ValueError, match="first-order"):
        SearchTrainer(
            trainer.model,
            trainer.data_loader,
            trainer.optimizer,
            arch_data_loader=trainer.arch_data_loader,
            arch_optimizer=trainer.arch_optimizer,
            second_order=True,
            amp_precision=torch.bfloat16,
        )


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
            SearchTrainer(
                plain,
                trainer.data_loader,
                trainer.optimizer,
                arch_data_loader=trainer.arch_data_loader,
                arch_optimizer=trainer.arch_optimizer,
            )
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


def test_a_failing_graphviz_costs_the_plot_not_the_search(
    tmp_path, synthetic_root, monkeypatch, caplog
):
    trainer, _ = _in_process_trainer(tmp_path, period=10, max_iter=1)

    def broken_dot(*args, **kwargs):
        raise RuntimeError("dot -Tpng failed")

    monkeypatch.setattr("fad.engine.hooks.plot_genotype", broken_dot)
    with caplog.at_level(logging.WARNING, logger="fad.engine.hooks"):
        trainer.train(0, 1)
    load_genotype_file(str(tmp_path / "genotype.log"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "fad.engine.hooks"]
    assert warnings == [
        f"Could not plot the {tower} tower's cell: dot -Tpng failed" for tower in ("box", "cls")
    ]


def test_atomic_checkpointer_never_leaves_a_partial_file(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000000")
    good = (tmp_path / "model_0000000.pth").read_bytes()

    def failing_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        checkpointer.save("model_0000000")
    with pytest.raises(OSError, match="disk full"):
        checkpointer.save("model_0000001")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000000.pth"]
    assert (tmp_path / "model_0000000.pth").read_bytes() == good
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000000.pth"
