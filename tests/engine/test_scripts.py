"""search_net.py and train_net.py as a user runs them, in subprocesses, on the synthetic data.

Every run is a few iterations of the CPU-sized configs (marked ``slow``: ``-m "not slow"`` skips
them).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402

from fad.data.synthetic import generate_synthetic_coco  # noqa: E402
from fad.engine.export import OUTPUT_NAMES, load_exported, run_exported  # noqa: E402
from fad.genotypes import (  # noqa: E402
    FAD_PAPER_BOX,
    Genotype,
    as_genotype,
    derive_genotype,
    load_genotype_file,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEARCH_CFG = "configs/fad/search/fad_fcos_R_18_synthetic.py"
AUGMENT_CFG = "configs/fad/augment/fad_fcos_R_18_synthetic.py"
TINY = ["train.max_iter=4", "train.checkpointer.period=2", "train.log_period=1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AP_ROW = re.compile(r"copypaste: ([-\d.naN]+(?:,[-\d.naN]+){5})\s*$", re.M)


def script_env(synthetic_root: Path, datasets: Path) -> dict:
    env = dict(os.environ)
    env["FAD_SYNTHETIC_ROOT"] = str(synthetic_root)
    env["DETECTRON2_DATASETS"] = str(datasets)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def env(synthetic_root, tmp_path_factory):
    """The scripts' environment: the session's synthetic splits, no other datasets."""
    return script_env(synthetic_root, tmp_path_factory.mktemp("no_datasets"))


def run(script, *args, env, expect_rc=0):
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        umask=0o022,
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
def search_run(tmp_path_factory):
    """A search from an empty synthetic root: the script generates the splits it reads."""
    root = tmp_path_factory.mktemp("fresh_synthetic")
    env = script_env(root, tmp_path_factory.mktemp("no_datasets"))
    out = tmp_path_factory.mktemp("search")
    proc = run(
        "search_net.py", "--config-file", SEARCH_CFG, *TINY, f"train.output_dir={out}", env=env
    )
    return out, proc, root


def test_search_generates_the_splits_it_reads(search_run):
    _, _, root = search_run
    assert sorted(p.name for p in root.iterdir()) == ["arch", "train"]
    for split in ("arch", "train"):
        assert (root / split / "annotations.json").is_file()


def test_search_writes_genotypes_plots_events_and_a_checkpoint_with_alphas(search_run):
    out, proc, _ = search_run
    box, cls = load_genotype_file(str(out / "genotype.log"), num_nodes=3).values()
    # The search says where its genotypes are.
    assert f"written to {out / 'genotype.log'}" in proc.stderr + proc.stdout
    for tower in ("box", "cls"):
        assert "->" in (out / f"cell_{tower}.dot").read_text()
        if shutil.which("dot"):
            assert (out / f"cell_{tower}.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "alphas.png").read_bytes()[:8] == PNG_MAGIC
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
    # alphas.png's samples (every log period, here every iteration) are in the checkpoint.
    history = ckpt["trainer"]["hooks"]["GenotypeWriter"]
    assert history["iterations"] == [0, 1, 2, 3]
    for tower in ("box", "cls"):
        weights = history["weights"][tower]
        assert weights.shape == (4, 9, 11)
        assert torch.allclose(weights[0], torch.full((9, 11), 1 / 11), atol=1e-3)  # the init
    log = (out / "log.txt").read_text()
    assert str(box) in log and str(cls) in log
    # The quick-start configs keep the last periodic checkpoint and the final one; the alphas
    # and their history (above) are in what is kept.
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_0000003.pth", "model_final.pth"]
    # One thread on a CPU (train.cpu_threads); the model in one line, no echo of the config.
    assert "CPU threads: 1 per process (train.cpu_threads=1, 1 process(es)" in log
    assert re.search(r"Model: FADFCOS, [\d,]+ parameters \(train.log_config_and_model", log)
    assert "Contents of args.config_file" not in log and "FADFCOS(" not in log


def test_files_of_a_search_have_the_users_normal_permissions(search_run):
    out, _, _ = search_run  # run with umask 022
    for name in ("genotype.log", "cell_box.dot", "model_final.pth", "last_checkpoint"):
        assert os.stat(out / name).st_mode & 0o777 == 0o644, name


def test_search_with_amp_autocasts_on_cpu_to_bfloat16(env, tmp_path):
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "train.max_iter=2",
        "train.amp.enabled=True",
        "train.log_config_and_model=True",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    log = (tmp_path / "log.txt").read_text()
    assert "Mixed precision: autocast to torch.bfloat16" in log
    # Asked for: the config file and the whole model are in the log.
    assert f"Contents of args.config_file={SEARCH_CFG}" in log and "Model:\nFADFCOS(" in log
    ckpt = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert all(a.dtype == torch.float32 and torch.isfinite(a).all() for a in _alphas(ckpt["model"]))
    load_genotype_file(str(tmp_path / "genotype.log"))


def test_search_on_two_processes_keeps_alphas_identical(env, tmp_path):
    """Also the perturbation selection at the end: both ranks take the same decisions (a
    rank that decided otherwise would hang in the next pass's all_reduce, or fail the check)."""
    run(
        "search_net.py",
        "--num-gpus",
        2,
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "train.cpu_threads=64",
        "search.selection=perturbation",
        "search.selection_batches=1",
        *(
            f"dataloader.arch.mapper.augmentations.0.{k}=64"
            for k in ("short_edge_length", "max_size")
        ),
        f"train.output_dir={tmp_path}",
        env=env,
    )
    log = (tmp_path / "log.txt").read_text()
    # Each worker sets its threads: at most its share of the cores this command may use.
    threads = max(1, min(64, len(os.sched_getaffinity(0)) // 2))
    assert f"CPU threads: {threads} per process (train.cpu_threads=64, 2 process(es)" in log
    # The hook compares the ranks' alpha checksums at every write and raises if they differ.
    assert len(re.findall(r"Architecture weights identical on 2 rank\(s\)", log)) == 2
    assert log.count("100 validation passes of 1 batch(es)") == 2  # box and class towers
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
    # The samples of alphas.png survive the stop: the resumed search adds to them.
    before = stopped["trainer"]["hooks"]["GenotypeWriter"]
    after = final["trainer"]["hooks"]["GenotypeWriter"]
    assert before["iterations"] == [0, 1, 2] and after["iterations"] == list(range(6))
    for tower in ("box", "cls"):
        assert torch.equal(after["weights"][tower][:3], before["weights"][tower])
    assert (tmp_path / "alphas.png").read_bytes()[:8] == PNG_MAGIC


def _ap_rows(text):
    return [tuple(float(v) for v in row.split(",")) for row in AP_ROW.findall(text)]


def test_train_with_genotype_file_evaluates_and_eval_only_rebuilds_the_model(
    env, search_run, tmp_path
):
    search_out, _, _ = search_run
    genotype_file = search_out / "genotype.log"
    box, cls = load_genotype_file(str(genotype_file)).values()
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
    assert as_genotype(saved.model.head.box_tower.genotype) == box
    assert as_genotype(saved.model.head.cls_tower.genotype) == cls

    # As the README says: from the run's own config.yaml, which stays as it is.
    run_config = (tmp_path / "config.yaml").read_bytes()
    proc = run(
        "train_net.py",
        "--config-file",
        tmp_path / "config.yaml",
        "--eval-only",
        f"train.init_checkpoint={tmp_path / 'model_final.pth'}",
        env=env,
    )
    out = proc.stderr + proc.stdout
    assert "not found in the checkpoint" not in out and "shape mismatch" not in out.lower()
    evaluated = _ap_rows(out)
    assert len(evaluated) == 1
    assert evaluated[0] == pytest.approx(trained[0], nan_ok=True)
    assert (tmp_path / "config.yaml").read_bytes() == run_config
    assert (tmp_path / "eval" / "config.yaml").is_file()


def test_a_config_yaml_written_before_the_solver_moved_still_trains(env, search_run, tmp_path):
    """Runs before fad.solver moved to fad.engine.solver recorded the old path as _target_."""
    search_out, _, _ = search_run
    old = (search_out / "config.yaml").read_text().replace("fad.engine.solver.", "fad.solver.")
    assert "_target_: fad.solver.get_weight_optimizer_params" in old
    assert "_target_: fad.solver.get_arch_optimizer_params" in old
    (tmp_path / "config.yaml").write_text(old)
    run(
        "search_net.py",
        "--config-file",
        tmp_path / "config.yaml",
        "train.max_iter=1",
        f"train.output_dir={tmp_path / 'out'}",
        env=env,
    )
    load_genotype_file(str(tmp_path / "out" / "genotype.log"))


def test_eval_only_writes_the_genotypes_of_a_search_checkpoint(env, search_run, tmp_path):
    search_out, _, _ = search_run
    run_dir = tmp_path / "run"
    shutil.copytree(search_out, run_dir)
    # As the README says: from the search's own config.yaml, into its output directory.
    config = (run_dir / "config.yaml").read_text().replace(str(search_out), str(run_dir))
    (run_dir / "config.yaml").write_text(config)
    before = _tree_digest(run_dir)
    run(
        "search_net.py",
        "--config-file",
        run_dir / "config.yaml",
        "--eval-only",
        f"train.init_checkpoint={run_dir / 'model_0000003.pth'}",
        env=env,
    )
    exported = tuple(load_genotype_file(str(run_dir / "genotype_model_0000003.log")).values())
    ckpt = torch.load(run_dir / "model_0000003.pth", map_location="cpu", weights_only=False)
    alphas = _alphas(ckpt["model"])
    assert exported == (derive_genotype(alphas[:3]), derive_genotype(alphas[3:]))
    after = _tree_digest(run_dir)
    assert after.pop("genotype_model_0000003.log") and after == before  # nothing else changed


def test_eval_only_selects_by_perturbation_from_a_checkpoints_weights(env, search_run, tmp_path):
    search_out, _, _ = search_run
    size = [
        f"dataloader.arch.mapper.augmentations.0.{k}=64" for k in ("short_edge_length", "max_size")
    ]
    proc = run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        "--eval-only",
        f"train.init_checkpoint={search_out / 'model_final.pth'}",
        "search.selection=perturbation",
        "search.selection_batches=1",
        *size,
        f"train.output_dir={tmp_path}",
        env=env,
    )
    towers = load_genotype_file(str(tmp_path / "genotype_model_final.log"))
    assert set(towers) == {"box", "cls"}
    for genotype in towers.values():
        assert len(genotype.normal) == 3
        for i, node in enumerate(genotype.normal):
            sources = [src for _, src in node]
            assert len(set(sources)) == 2 and all(0 <= s < 2 + i for s in sources)
    # 1 base pass, 9 edges x 10 candidates, 9 edges: per tower.
    assert proc.stdout.count("100 validation passes of 1 batch(es)") == 2, proc.stdout[-2000:]


def test_search_of_one_tower_and_training_from_its_genotype_file(env, tmp_path):
    search_out = tmp_path / "search"
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "model.head.box_tower=null",  # the detector's conv tower
        f"train.output_dir={search_out}",
        env=env,
    )
    genotype_file = search_out / "genotype.log"
    assert genotype_file.read_text().splitlines()[0] == "None  # box tower, not searched"
    box, cls = load_genotype_file(str(genotype_file)).values()
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
    assert saved.model.head.box_tower is None
    assert as_genotype(saved.model.head.cls_tower.genotype) == cls


def test_retinanet_search_then_training_from_its_genotype_file(env, tmp_path):
    """The same scripts, hooks and genotype files serve FAD's RetinaNet."""
    search_out = tmp_path / "search"
    run(
        "search_net.py",
        "--config-file",
        "configs/fad/search/fad_retinanet_R_18_synthetic.py",
        *TINY,
        f"train.output_dir={search_out}",
        env=env,
    )
    box, cls = load_genotype_file(str(search_out / "genotype.log"), num_nodes=3).values()
    ckpt = torch.load(search_out / "model_final.pth", map_location="cpu", weights_only=False)
    alphas = _alphas(ckpt["model"])
    assert (derive_genotype(alphas[:3]), derive_genotype(alphas[3:])) == (box, cls)

    proc = run(
        "train_net.py",
        "--config-file",
        "configs/fad/augment/fad_retinanet_R_18_synthetic.py",
        "--genotype-file",
        search_out / "genotype.log",
        *TINY,
        "train.eval_period=4",
        f"train.output_dir={tmp_path / 'train'}",
        env=env,
    )
    assert len(_ap_rows(proc.stderr + proc.stdout)) == 1
    saved = LazyConfig.load(str(tmp_path / "train" / "config.yaml"))
    assert saved.model._target_ == "fad.modeling.FADRetinaNet"
    assert as_genotype(saved.model.head.box_tower.genotype) == box
    assert as_genotype(saved.model.head.cls_tower.genotype) == cls


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


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _train_on(json_file, image_root, *more) -> list:
    """Arguments that register a COCO dataset ``x`` and train on it."""
    return [
        "--register-coco",
        "x",
        json_file,
        image_root,
        "dataloader.train.dataset.names=x",
        *more,
    ]


def _weights_only_checkpoint(tmp: Path) -> Path:
    """A checkpoint of the search model without its alphas."""
    state = instantiate(LazyConfig.load(str(ROOT / SEARCH_CFG)).model).state_dict()
    path = tmp / "weights_only.pth"
    torch.save({"model": {k: v for k, v in state.items() if "alphas" not in k}}, path)
    return path


def _cut_checkpoint(tmp: Path) -> Path:
    """A checkpoint cut short, as a disk that filled up or an interrupted copy leaves it."""
    path = tmp / "cut.pth"
    torch.save({"model": torch.nn.Linear(64, 64).state_dict()}, path)
    path.write_bytes(path.read_bytes()[:-100])
    return path


CUT = r"cut.pth cannot be read \(the zip index at its end is missing\): the file is cut short"

# Each row: the script, its config, its extra arguments and the error it must end with; arguments
# and message that need files are functions of (tmp_path, a COCO JSON file).
TRAIN, SEARCH = ("train_net.py", AUGMENT_CFG), ("search_net.py", SEARCH_CFG)
EXPORT = ("export_model.py", AUGMENT_CFG)
BAD_INPUT = [
    pytest.param(
        *TRAIN,
        lambda t, j: [
            "--genotype-file",
            _file(t / "bad.log", f"# searched\n{FAD_PAPER_BOX}\n{BAD_GENOTYPE}\n"),
        ],
        lambda t, j: rf"{t / 'bad.log'} line 3: .*unknown op 'bogus_op'",
        id="malformed_genotype",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: ["--genotype-file", t / "nope.log"],
        "nope.log",
        id="missing_genotype",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: ["--genotype-file", t],
        lambda t, j: f"Is a directory: '{t}'",
        id="genotype_file_is_a_directory",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: [
            "--genotype-file",
            _file(t / "unfit.log", f"{FOUR_NODES}\n{FAD_PAPER_BOX}"),
        ],
        "model.head.box_tower: expected 3 nodes, the genotype has 4",
        id="unfit_genotype",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: _train_on(t / "gone.json", Path(j).parent / "images"),
        "dataset 'x' needs .*gone.json",
        id="missing_json",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: _train_on(j, t / "no_images"),
        "dataset 'x' needs .*no_images",
        id="missing_images",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: _train_on(
            _file(t / "empty.json", '{"images": [], "categories": [{"id": 1, "name": "a"}]}'),
            Path(j).parent / "images",
        ),
        "empty.json has no images",
        id="json_without_images",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: ["--register-coco", "coco_2017_val", j, Path(j).parent / "images"],
        "'coco_2017_val' is already registered with other files",
        id="register_over_a_builtin",
    ),
    pytest.param(
        *TRAIN,
        ["dataloader.train.dataset.names=coco_2017_train"],
        "coco_2017_train",
        id="missing_builtin",
    ),
    pytest.param(
        *SEARCH,
        ["dataloader.arch.dataset.names=fad_synthetic_train"],
        "read the same datasets",
        id="same_splits",
    ),
    pytest.param(
        *SEARCH,
        ["dataloader.train.dataset.names=[fad_synthetic_train,fad_synthetic_arch]"],
        "read the same datasets .*'fad_synthetic_arch' and 'fad_synthetic_arch'",
        id="overlapping_splits",
    ),
    pytest.param(
        *SEARCH,
        ["search.genotype_rank=Raw"],
        "search.genotype_rank must be 'softmax' or 'raw', got 'Raw'",
        id="bad_genotype_rank",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: _train_on(j, Path(j).parent / "images", "model.num_classes=5"),
        "has 3 classes but model.num_classes is 5",
        id="wrong_num_classes",
    ),
    pytest.param(
        *TRAIN,
        ["train.max_iter=[1,"],
        "cannot apply the override train.max_iter=\\[1,",
        id="bad_override",
    ),
    pytest.param(
        *TRAIN,
        ["train.max_iters=5"],
        "train.max_iters names a key .* did you mean train.max_iter\\?",
        id="unknown_override_key",
    ),
    pytest.param(
        *SEARCH,
        ["model.head.box_tower.dil33=True"],
        "model.head.box_tower.dil33 .* did you mean model.head.box_tower.dil3\\?",
        id="unknown_constructor_argument",
    ),
    pytest.param(
        *SEARCH,
        ["search.warmup_iters=-1"],
        "search.warmup_iters must be an int >= 0, got -1",
        id="negative_warmup",
    ),
    pytest.param(
        *SEARCH,
        ["train.max_iter=4", "search.warmup_iters=4"],
        "search.warmup_iters \\(4\\) must be below train.max_iter \\(4\\)",
        id="warmup_as_long_as_the_search",
    ),
    pytest.param(
        *SEARCH,
        ["train.log_period=0"],
        "train.log_period must be an int >= 1, got 0",
        id="zero_log_period",
    ),
    pytest.param(
        *SEARCH,
        ["search.selection=darts-pt"],
        "search.selection must be 'alpha' or 'perturbation', got 'darts-pt'",
        id="unknown_selection",
    ),
    pytest.param(
        *SEARCH,
        ["search.selection=perturbation", "search.selection_batches=0"],
        "search.selection_batches must be an int >= 1, got 0",
        id="no_selection_batches",
    ),
    pytest.param(
        *TRAIN,
        ["train.cuda_graphs=yes"],
        "train.cuda_graphs must be True or False, got 'yes'",
        id="cuda_graphs_as_a_string",
    ),
    pytest.param(
        *SEARCH,
        ["train.amp.enabled=True", "search.second_order=True"],
        "needs the first-order",
        id="amp_second_order",
    ),
    pytest.param(
        *TRAIN,
        ["train.device=cuda"],
        "train.device is 'cuda' but this machine has no CUDA device: add train.device=cpu",
        id="cuda_without_a_gpu",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
    ),
    pytest.param(
        *TRAIN,
        ["train.amp.enabled=True"],
        "needs a CUDA train.device, not 'cpu'",
        id="amp_training_on_cpu",
    ),
    pytest.param(
        *SEARCH,
        ["--eval-only"],
        "--eval-only needs train.init_checkpoint",
        id="eval_only_from_scratch",
    ),
    pytest.param(
        *SEARCH,
        lambda t, j: ["--eval-only", f"train.init_checkpoint={t / 'none.pth'}"],
        "train.init_checkpoint: no such file: .*none.pth",
        id="eval_only_missing_checkpoint",
    ),
    pytest.param(
        *SEARCH,
        lambda t, j: [
            "--eval-only",
            f"train.init_checkpoint={_weights_only_checkpoint(t)}",
        ],
        lambda t, j: r"weights_only.pth holds no architecture weights \(head.bbox_tower.alphas.0, ",
        id="eval_only_without_alphas",
    ),
    pytest.param(
        *SEARCH,
        ["search.cost=Flops"],
        "search.cost must be 'flops' or 'latency', got 'Flops'",
        id="bad_search_cost",
    ),
    pytest.param(
        *SEARCH,
        ["search.cost_weight=-1"],
        "search.cost_weight must be a finite number >= 0, got -1",
        id="negative_cost_weight",
    ),
    pytest.param(
        *TRAIN,
        ["train.cpu_threads=0"],
        "train.cpu_threads must be an int >= 1 or None, got 0",
        id="zero_cpu_threads",
    ),
    pytest.param(
        *SEARCH,
        ["train.log_config_and_model=yes"],
        "train.log_config_and_model must be True or False, got 'yes'",
        id="log_config_and_model_as_a_string",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: [f"train.init_checkpoint={_cut_checkpoint(t)}"],
        rf"train.init_checkpoint: .*{CUT}.* copy or download it again",
        id="cut_init_checkpoint",
    ),
    pytest.param(
        *TRAIN,
        lambda t, j: ["--eval-only", f"train.init_checkpoint={_cut_checkpoint(t)}"],
        rf"train.init_checkpoint: .*{CUT}",
        id="eval_only_cut_checkpoint",
    ),
    pytest.param(
        *SEARCH,
        lambda t, j: ["--eval-only", f"train.init_checkpoint={_cut_checkpoint(t)}"],
        rf"train.init_checkpoint: .*{CUT}",
        id="search_eval_only_cut_checkpoint",
    ),
    pytest.param(
        *EXPORT,
        lambda t, j: [
            "--output",
            t / "previous_run",
            f"train.init_checkpoint={_cut_checkpoint(t)}",
        ],
        rf"train.init_checkpoint: .*{CUT}",
        id="export_cut_checkpoint",
    ),
    pytest.param(
        *EXPORT,
        lambda t, j: ["--export-method", "scripting", "--output", t / "previous_run"],
        "--export-method scripting is not supported: .* use --export-method tracing",
        id="export_by_scripting",
    ),
    pytest.param(
        "export_model.py",
        SEARCH_CFG,
        lambda t, j: ["--output", t / "previous_run"],
        "this is a search config",
        id="export_a_search_model",
    ),
    pytest.param(
        *EXPORT,
        lambda t, j: [
            "--output",
            t / "previous_run",
            f"train.init_checkpoint={t / 'none.pth'}",
        ],
        "train.init_checkpoint: no such file: .*none.pth",
        id="export_missing_checkpoint",
    ),
]


@pytest.fixture
def previous_run(tmp_path) -> Path:
    """The files a earlier run left in an output directory, which bad input must not touch."""
    out = tmp_path / "previous_run"
    out.mkdir()
    (out / "config.yaml").write_text("train: {max_iter: 4}\n")
    (out / "genotype.log").write_text(f"{FAD_PAPER_BOX}\n{FAD_PAPER_BOX}\n")
    (out / "last_checkpoint").write_text("model_final.pth")
    torch.save({"model": {}, "iteration": 3}, out / "model_final.pth")
    return out


@pytest.mark.parametrize("script, config, extra, message", BAD_INPUT)
def test_bad_input_ends_with_one_error_line_and_loses_nothing(
    script, config, extra, message, env, previous_run, tmp_path
):
    before = _tree_digest(previous_run)
    json_file = generate_synthetic_coco(output_dir=str(tmp_path / "mine"), num_images=4, seed=1)
    args = extra(tmp_path, json_file) if callable(extra) else extra
    if callable(message):
        message = message(tmp_path, json_file)
    proc = run(
        script,
        "--config-file",
        config,
        *args,
        f"train.output_dir={previous_run}",
        env=env,
        expect_rc=2,
    )
    # argparse's usage, then the error: one line, the last one, and no import-time warnings
    # of detectron2's dependencies above it (fad.quiet_imports).
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{script}: error: ")]
    assert errors == lines[-1:], proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    assert re.search(message, errors[0]), errors[0]
    assert _tree_digest(previous_run) == before


@pytest.mark.parametrize(
    "script, config, last, message",
    [
        (*SEARCH, "model_0000199.pth", "names 'model_0000199.pth', which is not in .*put it back"),
        (*TRAIN, "cut.pth", rf"--resume: .*{CUT}.* write the name of an earlier checkpoint"),
        (*SEARCH, None, r"holds checkpoints \(cut.pth\) but no last_checkpoint"),
    ],
    ids=["named_checkpoint_gone", "named_checkpoint_cut", "no_last_checkpoint"],
)
def test_resume_never_starts_again_from_0_in_silence(env, tmp_path, script, config, last, message):
    out = tmp_path / "run"
    out.mkdir()
    _cut_checkpoint(out)
    if last:
        (out / "last_checkpoint").write_text(last)
    before = _tree_digest(out)
    args = ["--config-file", config, "--resume", f"train.output_dir={out}"]
    proc = run(script, *args, env=env, expect_rc=2)
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"{script}: error: --resume: ") and re.search(message, error), error
    assert _tree_digest(out) == before


def test_cost_aware_search_logs_expected_and_derived_costs_and_the_same_genotype_log(env, tmp_path):
    run(
        "search_net.py",
        "--config-file",
        SEARCH_CFG,
        *TINY,
        "search.cost_weight=0.5",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    log = (tmp_path / "log.txt").read_text()
    assert "Cost table (flops, op width 64, 128x128 input" in log
    lines = re.findall(r"Cost at iteration (\d+): expected [\d.]+ .* ops [\d.]+ GFLOPs", log)
    assert lines == ["2", "4"]  # at each genotype.log write
    metrics = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert any("cost/expected" in m and "cost/derived_gflops" in m for m in metrics)
    box, cls = load_genotype_file(str(tmp_path / "genotype.log"), num_nodes=3).values()
    assert (tmp_path / "genotype.log").read_text() == f"{box}  # box tower\n{cls}  # class tower\n"


@pytest.fixture(scope="module")
def train_run(env, tmp_path_factory):
    """A few iterations of train_net.py with the paper's genotypes: a run to export."""
    out = tmp_path_factory.mktemp("train")
    run(
        "train_net.py",
        "--config-file",
        AUGMENT_CFG,
        "--genotype-file",
        ROOT / "projects/FAD/genotypes/fad_paper.log",
        *TINY,
        f"train.output_dir={out}",
        env=env,
    )
    return out


@pytest.mark.parametrize("fmt, file_name", [("torchscript", "model.ts"), ("onnx", "model.onnx")])
def test_export_model_from_a_runs_config_yaml_runs_at_other_sizes(
    env, train_run, tmp_path, fmt, file_name
):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[dev]')")
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    proc = run(
        "export_model.py",
        "--config-file",
        train_run / "config.yaml",
        "--format",
        fmt,
        "--output",
        tmp_path,
        f"train.init_checkpoint={train_run / 'model_final.pth'}",
        env=env,
    )
    log = proc.stdout + proc.stderr
    assert f"Exported to {tmp_path / file_name}" in log
    assert "Tracing at a 96x128 sample image (original 480x640)" in log
    assert re.search(r"Exported and eager model (agree on \d+ detections|differ)", log)
    outputs = run_exported(load_exported(str(tmp_path / file_name)), torch.rand(3, 128, 96) * 255)
    assert len(outputs) == len(OUTPUT_NAMES)
    assert outputs[-1].tolist() == [128, 96] and outputs[0].shape[1:] == (4,)


def test_export_to_onnx_without_the_onnx_package_says_what_to_install(env, tmp_path):
    stub = tmp_path / "hide" / "onnx"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(stub.parent), env.get("PYTHONPATH", "")])}
    proc = run(
        "export_model.py",
        "--config-file",
        AUGMENT_CFG,
        "--format",
        "onnx",
        "--output",
        tmp_path / "export",
        env=env,
        expect_rc=2,
    )
    assert proc.stderr.strip().splitlines()[-1] == (
        "export_model.py: error: --format onnx needs the onnx package: pip install onnx onnxruntime"
    )
    assert not (tmp_path / "export").exists()
