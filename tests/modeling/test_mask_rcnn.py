"""Mask R-CNN with a FAD mask tower (the paper's "Beyond"), driven by the configs.

Every model is built from a config under ``configs/``: the synthetic R-18 ones train, infer and
take an alpha step on small random images with random or no instances; the R-50 ones build.
"""

from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2", reason="detectron2 is not installed: the model tests need it")

from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.modeling.roi_heads import MaskRCNNConvUpsampleHead  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from fad.engine.defaults import build_model_on_meta, derive_towers  # noqa: E402
from fad.genotypes import FAD_OTHER_CLS, FAD_PAPER_BOX, random_genotype  # noqa: E402
from fad.modeling import FADMaskHead, FADMaskRCNN  # noqa: E402
from fad.nas.derived_cells import DerivedTower  # noqa: E402
from fad.nas.search_cells import SearchTower  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEARCH_R18 = "configs/fad/search/fad_mask_rcnn_R_18_synthetic.py"
AUGMENT_R18 = "configs/fad/augment/fad_mask_rcnn_R_18_synthetic.py"
BASELINE_R18 = "configs/mask_rcnn/mask_rcnn_R_18_synthetic.py"
SEARCH_COCO = "configs/fad/search/fad_mask_rcnn_R_50_FPN_coco.py"
AUGMENT_R50 = "configs/fad/augment/fad_mask_rcnn_R_50_FPN_1x.py"
BASELINE_R50 = "configs/mask_rcnn/mask_rcnn_R_50_FPN_1x.py"
GENOTYPE = random_genotype(seed=0)


def load(rel_path: str, *, genotype=GENOTYPE):
    """A config; a mask tower that waits for ``--genotype-file`` gets ``genotype``."""
    cfg = LazyConfig.load(str(ROOT / rel_path))
    tower = OmegaConf.select(cfg, "model.roi_heads.mask_head.tower")
    if tower is not None and OmegaConf.is_missing(tower, "genotype"):
        tower.genotype = genotype.to_plain()
    return cfg


def build(rel_path: str, **mask_head):
    cfg = load(rel_path)
    for key, value in mask_head.items():
        cfg.model.roi_heads.mask_head[key] = value
    torch.manual_seed(0)
    return instantiate(cfg.model)


def batch(counts, *, seed=0):
    """128x128 images with ``counts[i]`` boxes (masks: the boxes' pixels) each."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        xy, wh = torch.rand(n, 2, generator=g) * 60, 16 + torch.rand(n, 2, generator=g) * 40
        inst = Instances((128, 128), gt_boxes=Boxes(torch.cat([xy, xy + wh], 1)))
        inst.gt_classes = torch.randint(3, (n,), generator=g)
        masks = torch.zeros(n, 128, 128, dtype=torch.bool)
        for i, (x0, y0, x1, y1) in enumerate(inst.gt_boxes.tensor.int().tolist()):
            masks[i, y0:y1, x0:x1] = True
        inst.gt_masks = BitMasks(masks)
        image = torch.randint(256, (3, 128, 128), generator=g).float()
        out.append({"image": image, "instances": inst, "height": 128, "width": 128})
    return out


@pytest.mark.parametrize(
    "rel_path, tower",
    [(SEARCH_COCO, SearchTower), (AUGMENT_R50, DerivedTower), (BASELINE_R50, None)],
)
def test_the_coco_configs_build_the_expected_mask_heads(rel_path, tower):
    model = build_model_on_meta(load(rel_path))
    head = model.roi_heads.mask_head
    if tower is None:
        assert type(head) is MaskRCNNConvUpsampleHead
        return
    assert type(model) is FADMaskRCNN and isinstance(head, FADMaskHead)
    assert isinstance(head.tower, tower) and head.tower.in_channels == 256
    # One cell of three nodes at op width 256 (the original's NUM_CHANNELS_MASK), reduced back.
    assert len(head.tower.cells) == 1 and head.mask_reduce.in_channels == 3 * 256
    assert head.predictor.out_channels == 80


def test_mask_head_state_dict_names_are_those_of_earlier_checkpoints():
    """Checkpoints of earlier versions load strictly: the mask head's names outside its tower."""
    head = build(AUGMENT_R18).roi_heads.mask_head
    assert [n for n in head.state_dict() if not n.startswith("tower.")] == [
        f"{m}.{p}" for m in ("mask_reduce", "deconv", "predictor") for p in ("weight", "bias")
    ]


@pytest.mark.parametrize("rel_path", [SEARCH_R18, AUGMENT_R18, BASELINE_R18])
@pytest.mark.parametrize("counts", [[2, 0], [0, 0]], ids=["one_empty", "all_empty"])
def test_training_forward_backward_with_images_without_instances(rel_path, counts):
    model = build(rel_path)
    with EventStorage():
        losses = model(batch(counts))
    assert {"loss_mask", "loss_cls", "loss_rpn_cls"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    if not any(counts):  # every RoI negative: the mask loss is a zero that still backpropagates
        assert losses["loss_mask"] == 0
    sum(losses.values()).backward()
    head = model.roi_heads.mask_head
    trained = [p for n, p in head.named_parameters() if "alphas" not in n]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)


@pytest.mark.parametrize("rel_path", [SEARCH_R18, AUGMENT_R18])
@pytest.mark.parametrize("num_classes", [3, 1], ids=["class_specific", "class_agnostic"])
def test_inference_predicts_a_mask_per_detection(rel_path, num_classes):
    model = build(rel_path, num_classes=num_classes).eval()
    with torch.no_grad():
        outputs = model(batch([1, 0]))
    for output in outputs:
        instances = output["instances"]
        assert instances.pred_masks.shape[1:] == (128, 128)
        assert len(instances.pred_masks) == len(instances.pred_boxes)


def test_the_alpha_step_reaches_the_mask_alphas_and_nothing_of_the_backbone():
    model = build(SEARCH_R18)
    alphas = model.arch_parameters()
    assert [tuple(a.shape)[0] for a in alphas] == [2, 3, 4]
    assert list(model.search_towers()) == ["mask"]
    with EventStorage():
        losses = model.losses_with_frozen_features(batch([2, 1]))
    sum(losses.values()).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.backbone.parameters() if p.dtype.is_floating_point)
    assert not set(map(id, alphas)) & set(map(id, model.weight_parameters()))
    (genotype,) = model.genotypes().values()
    assert genotype.num_nodes == 3


def test_genotype_file_of_a_mask_search_derives_the_mask_tower():
    cfg = load(AUGMENT_R18)
    derive_towers(cfg.model, {"mask": FAD_OTHER_CLS})
    head = build_model_on_meta(cfg).roi_heads.mask_head
    assert head.tower.genotype == FAD_OTHER_CLS and head.tower.in_channels == 64
    with pytest.raises(ValueError, match="holds a box tower's genotype, but FADMaskRCNN has no"):
        derive_towers(load(AUGMENT_R18).model, {"box": FAD_PAPER_BOX, "cls": None})
    fcos = LazyConfig.load(str(ROOT / "configs/fad/augment/fad_fcos_R_18_synthetic.py"))
    with pytest.raises(ValueError, match="holds a mask tower's genotype, but FADFCOS has no"):
        derive_towers(fcos.model, {"mask": FAD_OTHER_CLS})


def test_a_mask_head_without_a_fad_tower_is_named_before_work():
    cfg = load(AUGMENT_R18)
    cfg.model.roi_heads.mask_head.tower = None
    with pytest.raises(
        ValueError, match="^model.roi_heads.mask_head: the mask tower must be a FAD tower"
    ):
        build_model_on_meta(cfg)
