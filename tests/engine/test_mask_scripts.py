"""The FAD mask tower through the scripts: search_net.py, then train_net.py --genotype-file and
--eval-only, on the synthetic dataset with masks (CPU-sized Mask R-CNN R-18 configs)."""

import re

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
from detectron2.config import LazyConfig  # noqa: E402
from test_scripts import PNG_MAGIC, TINY, _ap_rows, run, script_env  # noqa: E402

from fad.genotypes import as_genotype, derive_genotype, load_genotype_file  # noqa: E402

pytestmark = pytest.mark.slow

SEARCH_CFG = "configs/fad/search/fad_mask_rcnn_R_18_synthetic.py"
AUGMENT_CFG = "configs/fad/augment/fad_mask_rcnn_R_18_synthetic.py"
BASELINE_CFG = "configs/mask_rcnn/mask_rcnn_R_18_synthetic.py"


@pytest.fixture(scope="module")
def env(synthetic_root, tmp_path_factory):
    return script_env(synthetic_root, tmp_path_factory.mktemp("no_datasets"))


@pytest.fixture(scope="module")
def mask_search(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("mask_search")
    run("search_net.py", "--config-file", SEARCH_CFG, *TINY, f"train.output_dir={out}", env=env)
    return out


def test_a_mask_search_writes_the_mask_towers_genotype_and_pictures(mask_search, env):
    text = (mask_search / "genotype.log").read_text()
    assert text.count("\n") == 1 and text.endswith("  # mask tower\n")
    (genotype,) = load_genotype_file(str(mask_search / "genotype.log")).values()
    checkpoint = torch.load(mask_search / "model_final.pth", map_location="cpu", weights_only=False)
    alphas = [checkpoint["model"][f"roi_heads.mask_head.tower.alphas.{i}"] for i in range(3)]
    assert genotype == derive_genotype(alphas)
    for picture in ("cell_mask.png", "alphas.png"):
        assert (mask_search / picture).read_bytes()[:8] == PNG_MAGIC

    # --eval-only derives the genotype of any checkpoint of the search.
    run(
        "search_net.py",
        "--config-file",
        mask_search / "config.yaml",
        "--eval-only",
        f"train.init_checkpoint={mask_search / 'model_final.pth'}",
        env=env,
    )
    exported = load_genotype_file(str(mask_search / "genotype_model_final.log"))
    assert exported == {"mask": genotype}


@pytest.mark.parametrize("config", [AUGMENT_CFG, BASELINE_CFG], ids=["fad", "detectron2"])
def test_training_evaluates_box_and_mask_ap_and_eval_only_rebuilds(
    config, mask_search, env, tmp_path
):
    genotype_args = (
        ["--genotype-file", mask_search / "genotype.log"] if config == AUGMENT_CFG else []
    )
    proc = run(
        "train_net.py",
        "--config-file",
        config,
        *genotype_args,
        *TINY,
        "train.eval_period=4",
        f"train.output_dir={tmp_path}",
        env=env,
    )
    out = proc.stderr + proc.stdout
    assert "copypaste: Task: bbox" in out and "copypaste: Task: segm" in out
    assert len(_ap_rows(out)) == 2  # box AP, mask AP
    if genotype_args:
        saved = LazyConfig.load(str(tmp_path / "config.yaml"))
        (genotype,) = load_genotype_file(str(mask_search / "genotype.log")).values()
        assert as_genotype(saved.model.roi_heads.mask_head.tower.genotype) == genotype
    proc = run(
        "train_net.py",
        "--config-file",
        tmp_path / "config.yaml",
        "--eval-only",
        f"train.init_checkpoint={tmp_path / 'model_final.pth'}",
        env=env,
    )
    assert len(_ap_rows(proc.stderr + proc.stdout)) == 2


@pytest.mark.parametrize(
    "script, config, args, message",
    [
        (
            "search_net.py",
            SEARCH_CFG,
            ["dataloader.train.dataset.names=fad_synthetic_train"],
            "dataset 'fad_synthetic_train' has no instance masks",
        ),
        (
            "train_net.py",
            AUGMENT_CFG,
            ["--genotype-file", "projects/FAD/genotypes/fad_paper.log"],
            "holds a box tower's genotype, but FADMaskRCNN has no box tower",
        ),
        (
            "train_net.py",
            AUGMENT_CFG,
            [],
            "model.roi_heads.mask_head.tower.genotype has no value: .* --genotype-file",
        ),
        (
            "train_net.py",
            AUGMENT_CFG.replace("mask_rcnn", "fcos"),
            ["--genotype-file", "{mask_log}"],
            "holds a mask tower's genotype, but FADFCOS has no mask tower",
        ),
    ],
    ids=["box_only_data", "box_genotypes", "no_genotype", "mask_genotype_to_fcos"],
)
def test_bad_mask_input_ends_with_one_error_line(script, config, args, message, mask_search, env):
    args = [a.format(mask_log=mask_search / "genotype.log") for a in args]
    proc = run(script, "--config-file", config, *args, "train.max_iter=1", env=env, expect_rc=2)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{script}: error: ")
    assert re.search(message, last), last
