"""The scripts' shared plumbing: configs checked on the meta device, override keys, old configs."""

from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from fad.engine.defaults import (  # noqa: E402
    build_model_on_meta,
    check_override_keys,
    load_config,
)
from fad.genotypes import random_genotype  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*/**/*.py"))
AUGMENT_R18 = "configs/fad/augment/fad_fcos_R_18_synthetic.py"


def _experiments():
    return [c for c in CONFIGS if "/common/" not in c]


@pytest.mark.parametrize("rel_path", _experiments())
def test_every_experiment_config_builds_on_the_meta_device(rel_path):
    cfg = LazyConfig.load(str(ROOT / rel_path))
    tower = OmegaConf.select(cfg, "model.roi_heads.mask_head.tower")
    if tower is not None and OmegaConf.is_missing(tower, "genotype"):
        # The mask configs take the genotype of a mask search (--genotype-file): none is published.
        with pytest.raises(ValueError, match="mask_head.tower.genotype has no value: .*--genotype"):
            build_model_on_meta(cfg)
        cfg.model.roi_heads.mask_head.tower.genotype = random_genotype(seed=0).to_plain()
    model = build_model_on_meta(cfg)
    assert all(p.is_meta for p in model.parameters())


def test_the_meta_build_runs_the_constructors_checks():
    cfg = LazyConfig.load(str(ROOT / AUGMENT_R18))
    cfg.model.head.box_tower.genotype = (
        "Genotype(normal=[[('x', 0), ('x', 1)]], normal_concat=range(2, 3))"
    )
    with pytest.raises(ValueError, match="^model.head.box_tower: .* unknown op 'x'"):
        build_model_on_meta(cfg)


@pytest.mark.parametrize(
    "override",
    [
        "train.max_iter=5",
        "model.head.box_tower.node_channels=64",  # an argument the config leaves at its default
        "model.head.fcos_num_convs=2",
        "dataloader.train.num_workers=0",
        "dataloader.train.mapper.augmentations.0.short_edge_length=96",
        "+train.my_note=1",  # hydra's explicit add
        "model.head.cls_tower.genotype.normal.0.0=[std_conv_3x3,1]",
        "model.head.box_tower=null",  # the detector's conv tower
    ],
)
def test_override_keys_that_exist_or_that_a_target_takes(override):
    cfg = LazyConfig.load(str(ROOT / AUGMENT_R18))
    genotype = OmegaConf.create({"normal": [[["a", 0]]], "normal_concat": [2]})
    cfg.model.head.cls_tower.genotype = genotype
    check_override_keys(cfg, [override])


@pytest.mark.parametrize(
    "override, message",
    [
        pytest.param("train.max_iters=5", "did you mean train.max_iter\\?", id="typo"),
        pytest.param(
            "model.head.box_tower.op_channel=32",
            "did you mean model.head.box_tower.op_channels",
            id="arg",
        ),
        pytest.param("trian.max_iter=5", "trian.max_iter .* did you mean train\\?", id="top"),
        pytest.param("model.head.box_tower.num_cells.x=1", "num_cells.x names a key", id="deeper"),
        pytest.param("solver.lr=0.1", "solver.lr names a key the config does not have'$", id="far"),
    ],
)
def test_override_keys_the_config_does_not_have_are_refused(override, message):
    cfg = LazyConfig.load(str(ROOT / AUGMENT_R18))
    with pytest.raises(KeyError, match=message):
        check_override_keys(cfg, [override])


def test_load_config_updates_targets_that_moved(tmp_path):
    cfg = LazyConfig.load(str(ROOT / AUGMENT_R18))
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    text = (tmp_path / "config.yaml").read_text().replace("fad.engine.solver.", "fad.solver.")
    (tmp_path / "config.yaml").write_text(text)

    class Args:
        config_file = str(tmp_path / "config.yaml")
        opts = []

    loaded = load_config(Args())
    assert loaded.optimizer.params._target_ == "fad.engine.solver.get_weight_optimizer_params"
    model = build_model_on_meta(loaded)
    assert isinstance(model, torch.nn.Module)
