"""End-to-end model tests driven by the experiment configs (detectron2's test_model_e2e style).

Every model is built from a config file under ``configs/``; inputs are small random images with
random or empty instances. The R-50/R-101/X-101 models run one small forward each; the many
training checks use the CPU-sized R-18 synthetic configs.
"""

import math
import shlex
from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2", reason="detectron2 is not installed: the model tests need it")

from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling.meta_arch.fcos import FCOS, FCOSHead  # noqa: E402
from detectron2.modeling.meta_arch.retinanet import RetinaNet, RetinaNetHead  # noqa: E402
from detectron2.solver.build import get_default_optimizer_params  # noqa: E402
from detectron2.structures import Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch import nn  # noqa: E402

from fad.engine.defaults import build_model_on_meta  # noqa: E402
from fad.genotypes import (  # noqa: E402
    FAD_OTHER_BOX,
    FAD_OTHER_CLS,
    FAD_PAPER_BOX,
    FAD_PAPER_CLS,
    PRIMITIVES,
    Genotype,
    as_genotype,
)
from fad.modeling import FADFCOS, ConvTower, FADHead, FADRetinaNet, FADRetinaNetHead  # noqa: E402
from fad.nas.derived_cells import DerivedTower  # noqa: E402
from fad.nas.search_cells import SearchTower  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

SEARCH_VOC = "configs/fad/search/fad_fcos_R_50_FPN_voc.py"
SEARCH_R18 = "configs/fad/search/fad_fcos_R_18_synthetic.py"
AUGMENT_R50 = "configs/fad/augment/fad_fcos_R_50_FPN_1x.py"
AUGMENT_R101 = "configs/fad/augment/fad_fcos_R_101_FPN_2x_ms.py"
AUGMENT_X101 = "configs/fad/augment/fad_fcos_X_101_64x4d_FPN_2x_ms.py"
AUGMENT_R18 = "configs/fad/augment/fad_fcos_R_18_synthetic.py"
FCOS_R50 = "configs/fcos/fcos_R_50_FPN_1x.py"
FCOS_R18 = "configs/fcos/fcos_R_18_synthetic.py"
RETINA_SEARCH_VOC = "configs/fad/search/fad_retinanet_R_50_FPN_voc.py"
RETINA_SEARCH_R18 = "configs/fad/search/fad_retinanet_R_18_synthetic.py"
RETINA_AUGMENT_R50 = "configs/fad/augment/fad_retinanet_R_50_FPN_1x.py"
RETINA_AUGMENT_R18 = "configs/fad/augment/fad_retinanet_R_18_synthetic.py"
RETINANET_R50 = "configs/retinanet/retinanet_R_50_FPN_1x.py"
RETINANET_R18 = "configs/retinanet/retinanet_R_18_synthetic.py"
ALL_CONFIGS = [
    SEARCH_VOC,
    SEARCH_R18,
    AUGMENT_R50,
    AUGMENT_R101,
    AUGMENT_X101,
    AUGMENT_R18,
    FCOS_R50,
    FCOS_R18,
    RETINA_SEARCH_VOC,
    RETINA_SEARCH_R18,
    RETINA_AUGMENT_R50,
    RETINA_AUGMENT_R18,
    RETINANET_R50,
    RETINANET_R18,
]
R18_CONFIGS = [
    SEARCH_R18,
    AUGMENT_R18,
    FCOS_R18,
    RETINA_SEARCH_R18,
    RETINA_AUGMENT_R18,
    RETINANET_R18,
]
R50_CONFIGS = [SEARCH_VOC, AUGMENT_R50, FCOS_R50, RETINA_SEARCH_VOC, RETINANET_R50]
SEARCH_CONFIGS = [SEARCH_R18, SEARCH_VOC, RETINA_SEARCH_R18, RETINA_SEARCH_VOC]

FCOS_LOSSES = {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"}
RETINANET_LOSSES = {"loss_cls", "loss_box_reg"}
NUM_OPS = len(PRIMITIVES)  # 11: ten candidate ops and 'none'
SIZES = [(64, 96), (96, 64)]  # (H, W) of the two training images
# Batches: both images annotated, the second one without boxes, neither with boxes.
BOX_COUNTS = {"boxes": (3, 2), "one_empty": (3, 0), "all_empty": (0, 0)}


# ------------------------------------------------------------------------------------------------
# Helpers


def load(rel_path: str):
    """A fresh LazyConfig of a config file (relative to the repository root)."""
    return LazyConfig.load(str(ROOT / rel_path))


def build(rel_path: str, **overrides) -> nn.Module:
    """The model of a config file, from seed 0, with ``model.head`` entries replaced (a dotted
    key, ``box_tower.genotype``, names an entry below the head)."""
    cfg = load(rel_path)
    for key, value in overrides.items():
        OmegaConf.update(cfg.model.head, key, value, merge=False)
    torch.manual_seed(0)
    return instantiate(cfg.model)


@pytest.fixture(scope="module")
def shared_models():
    """Models built once for this module, for read-only checks (eval forward, counts)."""
    cache = {}

    def get(rel_path: str) -> nn.Module:
        if rel_path not in cache:
            cache[rel_path] = build(rel_path)
        return cache[rel_path]

    yield get
    cache.clear()


def image(h: int, w: int) -> torch.Tensor:
    """A random uint8 CHW image, as detectron2's DatasetMapper produces."""
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8)


def instances(h: int, w: int, n: int, num_classes: int) -> Instances:
    """``n`` random ground-truth boxes (``n = 0``: empty ``gt_boxes``/``gt_classes``)."""
    inst = Instances((h, w))
    size = torch.tensor([w, h], dtype=torch.float32)
    x0y0 = torch.rand(n, 2) * size * 0.5
    x1y1 = torch.minimum(x0y0 + (0.2 + 0.5 * torch.rand(n, 2)) * size, size)
    inst.gt_boxes = Boxes(torch.cat([x0y0, x1y1], dim=1))
    inst.gt_classes = torch.randint(num_classes, (n,), dtype=torch.int64)
    return inst


def batch(kind: str, num_classes: int, *, seed: int = 0):
    torch.manual_seed(seed)
    return [
        {"image": image(h, w), "instances": instances(h, w, n, num_classes)}
        for (h, w), n in zip(SIZES, BOX_COUNTS[kind])
    ]


def reset_loss_normalizer(model: nn.Module) -> None:
    """Forget FCOS's EMA of the positive count, which every training forward updates."""
    model.__dict__.pop("loss_normalizer", None)


def train_losses(model: nn.Module, inputs, *, frozen_features: bool = False):
    model.train()
    reset_loss_normalizer(model)
    with EventStorage():
        if frozen_features:
            return model.losses_with_frozen_features(inputs)
        return model(inputs)


def check_losses(losses) -> torch.Tensor:
    assert set(losses) in (FCOS_LOSSES, RETINANET_LOSSES)
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), (name, value)
    total = sum(losses.values())
    assert total.requires_grad
    return total


def ids(params) -> list:
    return [id(p) for p in params]


def optimizer_params(optimizer: torch.optim.Optimizer) -> list:
    return [p for group in optimizer.param_groups for p in group["params"]]


def hydra_plain(genotype: Genotype) -> str:
    """A genotype's plain-data form in hydra's override syntax (no quotes, no spaces)."""
    nodes = ",".join(
        "[" + ",".join(f"[{op},{src}]" for op, src in node) + "]" for node in genotype.normal
    )
    concat = ",".join(str(i) for i in genotype.normal_concat)
    return f"{{normal:[{nodes}],normal_concat:[{concat}]}}"


# ------------------------------------------------------------------------------------------------
# 1. Every config builds and runs inference


@pytest.mark.parametrize("rel_path", ALL_CONFIGS)
def test_config_builds_and_runs_inference(rel_path, shared_models):
    assert (ROOT / rel_path).is_file()
    model = shared_models(rel_path)
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = model([{"image": image(256, 256)}])
    assert isinstance(outputs, list) and len(outputs) == 1
    result = outputs[0]["instances"]
    assert isinstance(result, Instances)
    assert result.image_size == (256, 256)
    for field in ("pred_boxes", "scores", "pred_classes"):
        assert result.has(field), field
    assert isinstance(result.pred_boxes, Boxes)
    assert len(result.scores) == len(result.pred_classes) == len(result.pred_boxes)
    assert torch.isfinite(result.pred_boxes.tensor).all()
    if len(result):
        assert 0 <= int(result.pred_classes.min()) <= int(result.pred_classes.max())
        assert int(result.pred_classes.max()) < model.num_classes


def test_configs_build_the_expected_heads(shared_models):
    expected = {
        SEARCH_VOC: (FADFCOS, FADHead, SearchTower, 20),
        SEARCH_R18: (FADFCOS, FADHead, SearchTower, 3),
        AUGMENT_R50: (FADFCOS, FADHead, DerivedTower, 80),
        AUGMENT_R101: (FADFCOS, FADHead, DerivedTower, 80),
        AUGMENT_X101: (FADFCOS, FADHead, DerivedTower, 80),
        AUGMENT_R18: (FADFCOS, FADHead, DerivedTower, 3),
        FCOS_R50: (FCOS, FCOSHead, None, 80),
        FCOS_R18: (FCOS, FCOSHead, None, 3),
        RETINA_SEARCH_VOC: (FADRetinaNet, FADRetinaNetHead, SearchTower, 20),
        RETINA_SEARCH_R18: (FADRetinaNet, FADRetinaNetHead, SearchTower, 3),
        RETINA_AUGMENT_R50: (FADRetinaNet, FADRetinaNetHead, DerivedTower, 80),
        RETINA_AUGMENT_R18: (FADRetinaNet, FADRetinaNetHead, DerivedTower, 3),
        RETINANET_R50: (RetinaNet, RetinaNetHead, None, 80),
        RETINANET_R18: (RetinaNet, RetinaNetHead, None, 3),
    }
    assert set(expected) == set(ALL_CONFIGS)
    for rel_path, (arch, head_type, tower_type, num_classes) in expected.items():
        model = shared_models(rel_path)
        assert type(model) is arch, rel_path
        assert type(model.head) is head_type, rel_path
        assert model.num_classes == num_classes, rel_path
        if tower_type is not None:
            assert isinstance(model.head.bbox_tower, tower_type), rel_path
            assert isinstance(model.head.cls_tower, tower_type), rel_path


def _derived(genotype: Genotype) -> DerivedTower:
    return DerivedTower(genotype=genotype, in_channels=64, op_channels=64, num_cells=2)


@pytest.mark.parametrize("reduce_init_std", [0.01, None])
def test_head_init_follows_the_original_and_reduce_init_std(reduce_init_std):
    torch.manual_seed(0)
    head = FADHead(
        input_shape=[ShapeSpec(channels=64)] * 5,
        num_classes=3,
        box_tower=_derived(FAD_PAPER_BOX),
        cls_tower=_derived(FAD_PAPER_CLS),
        reduce_init_std=reduce_init_std,
    )
    for conv in (head.cls_score, head.bbox_pred, head.ctrness):
        assert abs(conv.weight.std().item() - 0.01) < 0.002
    assert head.bbox_pred.bias.abs().sum() == 0 and head.ctrness.bias.abs().sum() == 0
    assert head.cls_score.bias.allclose(torch.full((3,), -math.log(99.0)))  # prior 0.01
    for conv in (head.box_reduce, head.cls_reduce):
        if reduce_init_std is None:
            # PyTorch's default: kaiming-uniform, std 1 / sqrt(3 * fan_in) = 1 / sqrt(576).
            assert abs(conv.weight.std().item() - 576**-0.5) < 0.005
        else:
            assert abs(conv.weight.std().item() - 0.01) < 0.002
            assert conv.bias.abs().sum() == 0


def test_retinanet_head_init_follows_detectron2s_retinanet_head():
    torch.manual_seed(0)
    head = FADRetinaNetHead(
        input_shape=[ShapeSpec(channels=64)] * 5,
        num_classes=3,
        num_anchors=9,
        box_tower=_derived(FAD_PAPER_BOX),
        cls_tower=None,
    )
    assert head.cls_score.out_channels == 27 and head.bbox_pred.out_channels == 36
    for conv in (head.cls_score, head.bbox_pred, head.box_reduce):
        assert abs(conv.weight.std().item() - 0.01) < 0.002
    assert head.bbox_pred.bias.abs().sum() == 0
    assert head.cls_score.bias.allclose(torch.full((27,), -math.log(99.0)))  # prior 0.01
    assert isinstance(head.cls_tower, ConvTower)
    plain = [m for m in head.cls_tower if isinstance(m, nn.Conv2d)]
    assert len(plain) == 4 and all(abs(c.weight.std().item() - 0.01) < 0.002 for c in plain)
    assert isinstance(head.cls_reduce, nn.Identity)


@pytest.mark.parametrize("rel_path", [SEARCH_R18, RETINA_SEARCH_R18])
def test_head_state_dict_names_are_those_of_earlier_checkpoints(rel_path):
    """Checkpoints of earlier versions load strictly: the head's names outside its FAD tower."""
    head = build(rel_path, cls_tower=None).head  # the class tower is the detector's conv tower
    fcos = isinstance(head, FADHead)
    # FCOS's conv tower: (conv, GroupNorm, ReLU) x 4; RetinaNet's: (conv, ReLU) x 4.
    convs = [0, 1, 3, 4, 6, 7, 9, 10] if fcos else [0, 2, 4, 6]
    predictors = ["cls_score", "bbox_pred"] + (["ctrness"] if fcos else [])
    assert [n for n in head.state_dict() if not n.startswith("bbox_tower.")] == [
        f"{m}.{p}"
        for m in [f"cls_tower.{i}" for i in convs] + ["box_reduce"] + predictors
        for p in ("weight", "bias")
    ]


# ------------------------------------------------------------------------------------------------
# 2. Training forward/backward, with empty instances


def _check_training_step(rel_path: str, kind: str):
    model = build(rel_path)
    total = check_losses(train_losses(model, batch(kind, model.num_classes)))
    total.backward()
    head = [(n, p) for n, p in model.head.named_parameters() if p.requires_grad]
    missing = [n for n, p in head if p.grad is None]
    assert not missing, missing
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    if getattr(model, "search", False):
        alphas = model.arch_parameters()
        assert len(alphas) == 6
        for i, a in enumerate(alphas):
            assert a.grad is not None and a.grad.abs().sum() > 0, f"alpha {i} got no gradient"


@pytest.mark.parametrize("kind", list(BOX_COUNTS))
@pytest.mark.parametrize("rel_path", R18_CONFIGS)
def test_training_forward_backward_r18(rel_path, kind):
    _check_training_step(rel_path, kind)


@pytest.mark.parametrize("rel_path", R50_CONFIGS)
def test_training_forward_backward_r50_one_empty_image(rel_path):
    _check_training_step(rel_path, "one_empty")


# ------------------------------------------------------------------------------------------------
# 3. Architecture parameters, genotypes, weight/alpha split of the search model


@pytest.mark.parametrize("rel_path", [SEARCH_VOC, RETINA_SEARCH_VOC])
def test_search_model_arch_parameters_and_genotypes(rel_path, shared_models):
    model = shared_models(rel_path)
    alphas = model.arch_parameters()
    assert [tuple(a.shape) for a in alphas] == [(2, NUM_OPS), (3, NUM_OPS), (4, NUM_OPS)] * 2
    towers = model.search_towers()
    assert list(towers) == ["box", "cls"]
    assert towers["box"] is model.head.bbox_tower and towers["cls"] is model.head.cls_tower
    assert ids(alphas[:3]) == ids(towers["box"].alphas)
    assert ids(alphas[3:]) == ids(towers["cls"].alphas)
    assert model.arch_parameter_names() == [
        f"head.{tower}.alphas.{i}" for tower in ("bbox_tower", "cls_tower") for i in range(3)
    ]
    assert all(isinstance(a, nn.Parameter) and a.requires_grad for a in alphas)

    genotypes = model.genotypes()
    assert list(genotypes) == ["box", "cls"]
    for g in genotypes.values():
        assert isinstance(g, Genotype) and g.num_nodes == 3
        assert Genotype.from_str(str(g)) == g
        assert all(op in PRIMITIVES[:-1] for node in g.normal for op, _ in node)

    weights = model.weight_parameters()
    assert not set(ids(weights)) & set(ids(alphas))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(ids(weights) + ids(alphas)) == sorted(ids(trainable))
    assert len(weights) + len(alphas) == len(trainable)  # no parameter listed twice


def test_genotypes_follow_the_alphas():
    model = build(SEARCH_R18)
    alphas = model.arch_parameters()
    with torch.no_grad():
        for a in alphas:
            a.zero_()
        alphas[0][1, PRIMITIVES.index("std_conv_3x3_x2")] = 3.0  # box node 0, edge from s1
        alphas[0][0, PRIMITIVES.index("sinSep_conv_3x3")] = 2.0  # box node 0, edge from s0
        alphas[5][3, PRIMITIVES.index("sinSep_conv_3x3+dil_conv_3x3")] = 4.0  # cls node 2
    box, cls = model.genotypes().values()
    assert box.normal[0] == [("std_conv_3x3_x2", 1), ("sinSep_conv_3x3", 0)]
    assert cls.normal[2][0] == ("sinSep_conv_3x3+dil_conv_3x3", 3)


# ------------------------------------------------------------------------------------------------
# 4. Optimizers: SGD never gets the alphas, Adam gets exactly them


@pytest.mark.parametrize("rel_path", [SEARCH_VOC, SEARCH_R18, RETINA_SEARCH_R18])
def test_weight_optimizer_never_holds_the_alphas(rel_path):
    cfg = load(rel_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    alphas = set(ids(model.arch_parameters()))
    assert len(alphas) == 6

    # The danger: detectron2's default parameter groups collect every parameter, alphas included.
    default = [p for group in get_default_optimizer_params(model) for p in group["params"]]
    assert alphas <= set(ids(default))

    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    assert isinstance(optimizer, torch.optim.SGD)
    held = ids(optimizer_params(optimizer))
    assert not alphas & set(held)
    assert len(held) == len(set(held))
    assert set(held) == set(ids(model.weight_parameters()))


def test_arch_optimizer_of_the_voc_search():
    cfg = load(SEARCH_VOC)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    cfg.arch_optimizer.params.model = model
    optimizer = instantiate(cfg.arch_optimizer)
    assert type(optimizer) is torch.optim.Adam
    assert len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(3e-4)
    assert tuple(group["betas"]) == pytest.approx((0.5, 0.999))
    assert group["weight_decay"] == pytest.approx(1e-3)
    assert ids(group["params"]) == ids(model.arch_parameters())


def test_the_two_optimizers_move_disjoint_parameters():
    cfg = load(SEARCH_R18)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    cfg.arch_optimizer.params.model = model
    sgd, adam = instantiate(cfg.optimizer), instantiate(cfg.arch_optimizer)
    assert not set(ids(optimizer_params(sgd))) & set(ids(optimizer_params(adam)))

    check_losses(train_losses(model, batch("boxes", model.num_classes))).backward()
    alphas_before = [a.detach().clone() for a in model.arch_parameters()]
    weights_before = [p.detach().clone() for p in model.weight_parameters()]
    sgd.step()  # every parameter has a gradient now, alphas included
    assert all(torch.equal(a, b) for a, b in zip(model.arch_parameters(), alphas_before))
    moved = [not torch.equal(p, b) for p, b in zip(model.weight_parameters(), weights_before)]
    assert any(moved)
    adam.step()
    assert all(not torch.equal(a, b) for a, b in zip(model.arch_parameters(), alphas_before))


def test_arch_optimizer_refuses_a_derived_model():
    cfg = load(SEARCH_R18)
    cfg.arch_optimizer.params.model = build(AUGMENT_R18)
    with pytest.raises(ValueError, match="no architecture weights"):
        instantiate(cfg.arch_optimizer)


# ------------------------------------------------------------------------------------------------
# 5. The alpha step's forward with a frozen backbone


@pytest.mark.parametrize("rel_path", [SEARCH_R18, SEARCH_VOC, RETINA_SEARCH_R18])
def test_losses_with_frozen_features_match_the_training_forward(rel_path):
    model = build(rel_path)
    inputs = batch("boxes", model.num_classes)
    if rel_path == SEARCH_VOC:
        inputs = inputs[:1]  # the R-50 model: one small image is enough

    full = train_losses(model, inputs)
    check_losses(full).backward()
    grads_full = {n: p.grad.clone() for n, p in model.head.named_parameters()}
    model.zero_grad(set_to_none=True)

    frozen = train_losses(model, inputs, frozen_features=True)
    assert set(frozen) == set(full)
    for name in full:
        torch.testing.assert_close(frozen[name], full[name], rtol=1e-5, atol=1e-6)
    check_losses(frozen).backward()

    backbone = [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert backbone  # the R-18 backbone trains (freeze_at 0), the R-50 one from res3 on
    assert [n for n, p in backbone if p.grad is not None] == []
    for i, a in enumerate(model.arch_parameters()):
        assert a.grad is not None and a.grad.abs().sum() > 0, f"alpha {i}"
    for name, p in model.head.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, grads_full[name], rtol=1e-4, atol=1e-7)


def test_alpha_step_forward_leaves_the_loss_normalizer_alone():
    model = build(SEARCH_R18)
    model.train()
    with EventStorage():
        model(batch("boxes", model.num_classes))
        before = model.loss_normalizer
        model.losses_with_frozen_features(batch("boxes", model.num_classes, seed=1))
        assert model.loss_normalizer == before
        reset_loss_normalizer(model)
        model.losses_with_frozen_features(batch("boxes", model.num_classes, seed=1))
        assert "loss_normalizer" not in model.__dict__
        model(batch("boxes", model.num_classes, seed=1))
        assert model.loss_normalizer != before  # the weight step's forward does update it


# ------------------------------------------------------------------------------------------------
# 6. Derived towers have the original FAD parameter counts


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("rel_path, op_channels", [(AUGMENT_R50, 96), (AUGMENT_X101, 128)])
def test_derived_towers_have_the_original_parameter_counts(
    rel_path, op_channels, shared_models, original_tower_params
):
    head = shared_models(rel_path).head
    assert head.bbox_tower.genotype == FAD_PAPER_BOX
    assert head.cls_tower.genotype == FAD_PAPER_CLS
    for tower, genotype in ((head.bbox_tower, FAD_PAPER_BOX), (head.cls_tower, FAD_PAPER_CLS)):
        expected = original_tower_params(genotype, c_node=256, c=op_channels, num_cells=2)
        assert _n_params(tower) == expected
    if rel_path == AUGMENT_R50:
        assert _n_params(head.bbox_tower) == 1_935_552


# ------------------------------------------------------------------------------------------------
# 7. Genotypes in config.yaml and on the command line


def _state_shapes(model: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_genotypes_in_config_yaml_load_back_to_the_same_model(tmp_path):
    cfg = load(AUGMENT_R18)
    cfg.model.head.box_tower.genotype = str(FAD_OTHER_BOX)  # text form
    cfg.model.head.cls_tower.genotype = FAD_OTHER_CLS.to_plain()  # plain-data form
    path = tmp_path / "config.yaml"
    LazyConfig.save(cfg, str(path))
    assert path.is_file() and not (tmp_path / "config.yaml.pkl").exists()
    loaded = LazyConfig.load(str(path))
    assert loaded.model.head.box_tower.genotype == str(FAD_OTHER_BOX)
    torch.manual_seed(0)
    original = instantiate(cfg.model)
    reloaded = instantiate(loaded.model)
    for model in (original, reloaded):
        assert model.head.bbox_tower.genotype == FAD_OTHER_BOX
        assert model.head.cls_tower.genotype == FAD_OTHER_CLS
    assert _state_shapes(reloaded) == _state_shapes(original)
    assert list(reloaded.state_dict()) == list(original.state_dict())

    reloaded.load_state_dict(original.state_dict())
    original.eval()
    reloaded.eval()
    inputs = [{"image": image(96, 64)}]
    with torch.no_grad():
        a, b = original(inputs)[0]["instances"], reloaded(inputs)[0]["instances"]
    torch.testing.assert_close(a.scores, b.scores)
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor)


OTHER_BOX_TEXT = str(FAD_OTHER_BOX)
ALL_STD = Genotype.from_str(
    "Genotype(normal=[[('std_conv_3x3', 0), ('std_conv_3x3', 1)], "
    "[('std_conv_3x3', 0), ('std_conv_3x3', 2)], [('std_conv_3x3', 1), ('std_conv_3x3', 3)]], "
    "normal_concat=range(2, 5))"
)
CLS_EDITED = Genotype(
    normal=[[("std_conv_3x3", 1)] + FAD_OTHER_CLS.normal[0][1:]] + FAD_OTHER_CLS.normal[1:],
    normal_concat=range(2, 5),
)

# Overrides as the program receives them (after the shell), and the genotypes they give.
WORKING_OVERRIDES = {
    "plain_data_literal": (
        "model.head.box_tower.genotype={normal:[[[std_conv_3x3,0],[std_conv_3x3,1]],"
        "[[std_conv_3x3,0],[std_conv_3x3,2]],[[std_conv_3x3,1],[std_conv_3x3,3]]],"
        "normal_concat:[2,3,4]}",
        "bbox_tower",
        ALL_STD,
    ),
    "plain_data_with_plus_ops": (
        f"model.head.box_tower.genotype={hydra_plain(FAD_OTHER_BOX)}",
        "bbox_tower",
        FAD_OTHER_BOX,
    ),
    "single_edge_of_plain_data": (
        "model.head.cls_tower.genotype.normal.0.0=[std_conv_3x3,1]",
        "cls_tower",
        CLS_EDITED,
    ),
    "text_in_hydra_double_quotes": (
        f'model.head.box_tower.genotype="{OTHER_BOX_TEXT}"',
        "bbox_tower",
        FAD_OTHER_BOX,
    ),
    "text_in_hydra_single_quotes_escaped": (
        "model.head.box_tower.genotype='{}'".format(OTHER_BOX_TEXT.replace("'", "\\'")),
        "bbox_tower",
        FAD_OTHER_BOX,
    ),
}


@pytest.mark.parametrize("name", list(WORKING_OVERRIDES))
def test_genotype_overrides_that_work(name):
    pytest.importorskip("hydra", reason="hydra's override parser reads these overrides")
    override, tower, expected = WORKING_OVERRIDES[name]
    cfg = load(AUGMENT_R18)
    cfg.model.head.cls_tower.genotype = FAD_OTHER_CLS.to_plain()  # plain data, edge by edge
    LazyConfig.apply_overrides(cfg, [override])
    model = instantiate(cfg.model)
    assert getattr(model.head, tower).genotype == expected
    others = {"bbox_tower": FAD_PAPER_BOX, "cls_tower": FAD_OTHER_CLS}
    other = "cls_tower" if tower == "bbox_tower" else "bbox_tower"
    assert getattr(model.head, other).genotype == others[other]


def test_shipped_configs_hold_genotypes_an_edge_override_can_edit():
    cfg = load(AUGMENT_R18)
    assert as_genotype(cfg.model.head.cls_tower.genotype) == FAD_PAPER_CLS
    LazyConfig.apply_overrides(cfg, ["model.head.cls_tower.genotype.normal.0.0=[std_conv_3x3,1]"])
    edited = instantiate(cfg.model).head.cls_tower.genotype
    assert (
        edited.normal[0][0] == ("std_conv_3x3", 1) and edited.normal[1:] == FAD_PAPER_CLS.normal[1:]
    )
    # The text form has no `.normal.0.0` to edit.
    cfg.model.head.cls_tower.genotype = str(FAD_PAPER_CLS)
    with pytest.raises(KeyError, match="is not a config"):
        LazyConfig.apply_overrides(
            cfg, ["model.head.cls_tower.genotype.normal.0.0=[std_conv_3x3,1]"]
        )


def test_unquoted_text_override_does_not_parse():
    hydra_errors = pytest.importorskip("hydra.errors")
    cfg = load(AUGMENT_R18)
    with pytest.raises(hydra_errors.OverrideParseException):
        LazyConfig.apply_overrides(cfg, [f"model.head.box_tower.genotype={OTHER_BOX_TEXT}"])


def test_text_override_quoting_on_a_shell_command_line():
    pytest.importorskip("hydra", reason="hydra's override parser reads these overrides")
    # Works: double quotes for the shell, escaped double quotes for hydra, the text's own
    # single quotes untouched.
    good = shlex.split(f'"model.head.box_tower.genotype=\\"{OTHER_BOX_TEXT}\\""')
    cfg = load(AUGMENT_R18)
    LazyConfig.apply_overrides(cfg, good)
    assert instantiate(cfg.model).head.bbox_tower.genotype == FAD_OTHER_BOX

    # Fails: single quotes around the whole argument end at the text's first single quote,
    # so the shell strips the op names' quotes; the head then refuses the text.
    bad = shlex.split(f"""'model.head.box_tower.genotype="{OTHER_BOX_TEXT}"'""")
    assert "('std_conv_3x3_x3', 0)" not in bad[0]
    cfg = load(AUGMENT_R18)
    LazyConfig.apply_overrides(cfg, bad)
    with pytest.raises(ValueError, match="only literals may appear in a genotype"):
        instantiate(cfg.model)


# ------------------------------------------------------------------------------------------------
# 8. Genotypes that do not fit, and a head with one searched tower


FOUR_NODES = {
    "normal": [[["std_conv_3x3", 0], ["std_conv_3x3", 1]]] * 4,
    "normal_concat": [2, 3, 4, 5],
}


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("box_tower.genotype", FOUR_NODES, "^model.head.box_tower: .*expected 3 nodes.*has 4"),
        (
            "cls_tower.genotype",
            str(FAD_PAPER_CLS).replace("std_conv_3x3_x3", "std_conv_9x9"),
            "^model.head.cls_tower: .*unknown op 'std_conv_9x9'",
        ),
        ("box_tower.in_channels", 32, "^model.head: the box tower reads 32 channels .* has 64"),
    ],
)
def test_a_tower_that_does_not_fit_is_named_before_work(key, value, match):
    """The pre-flight build names the config key whose constructor refused."""
    cfg = load(AUGMENT_R18)
    OmegaConf.update(cfg.model.head, key, value, merge=False)
    with pytest.raises(ValueError, match=match):
        build_model_on_meta(cfg)


def test_four_node_genotypes_fit_four_node_cells():
    fits = {f"{t}_tower.{k}": v for t in ("box", "cls") for k, v in NODES_4.items()}
    model = build(AUGMENT_R18, **fits)
    assert model.head.bbox_tower.genotype.num_nodes == 4
    assert model.head.box_reduce.in_channels == 4 * 64
    check_losses(train_losses(model, batch("one_empty", model.num_classes))).backward()


NODES_4 = {"num_nodes": 4, "genotype": FOUR_NODES}


@pytest.mark.parametrize(
    "rel_path", [SEARCH_R18, AUGMENT_R18, RETINA_SEARCH_R18, RETINA_AUGMENT_R18]
)
def test_head_wiring_follows_section_6(rel_path):
    """Each stage of the head reads exactly the tensor section 6 names (checked by identity)."""
    head = build(rel_path).head
    fcos = isinstance(head, FADHead)
    seen = {}
    stages = ("bbox_tower", "box_reduce", "bbox_pred", "cls_tower", "cls_reduce", "cls_score")
    for name in stages + (("ctrness",) if fcos else ()):
        getattr(head, name).register_forward_hook(
            lambda module, args, out, name=name: seen.__setitem__(name, (args, out))
        )
    channels = head.box_reduce.out_channels
    features = [torch.randn(1, channels, 2**k, 2**k) for k in range(6, 1, -1)]  # P3..P7
    outputs = head(features)
    assert len(outputs) == (3 if fcos else 2)
    logits, bbox_reg = outputs[:2]
    # Each tower runs once, on all levels; the other hooks keep the last level's call.
    box_args, box_outs = seen["bbox_tower"]
    assert len(box_args) == 1 and box_args[0] is features  # s0 = s1
    box_out, bbox_feature = box_outs[-1], seen["box_reduce"][1]
    assert seen["box_reduce"][0][0] is box_out
    assert seen["bbox_pred"][0][0] is bbox_feature
    cls_args, cls_outs = seen["cls_tower"]
    assert len(cls_args) == 2 and cls_args[0][-1] is bbox_feature and cls_args[1] is features
    assert len(cls_args[0]) == len(cls_outs) == len(features)
    assert seen["cls_reduce"][0][0] is cls_outs[-1]
    assert seen["cls_score"][0][0] is seen["cls_reduce"][1]
    assert logits[-1] is seen["cls_score"][1] and bbox_reg[-1] is seen["bbox_pred"][1]
    if fcos:
        assert seen["ctrness"][0][0] is bbox_feature and outputs[2][-1] is seen["ctrness"][1]


@pytest.mark.parametrize("rel_path", [SEARCH_R18, RETINA_SEARCH_R18])
@pytest.mark.parametrize("searched", ["cls", "box"])
def test_search_with_one_fad_tower(searched, rel_path):
    cfg = load(rel_path)
    cfg.model.head["cls_tower" if searched == "box" else "box_tower"] = None
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    plain = model.head.bbox_tower if searched == "cls" else model.head.cls_tower
    # The detector's own tower: FCOS's convs with GroupNorm, RetinaNet's without.
    assert isinstance(plain, ConvTower)
    assert sum(isinstance(m, nn.Conv2d) for m in plain) == 4
    norms = sum(isinstance(m, nn.GroupNorm) for m in plain)
    assert norms == (4 if isinstance(model.head, FADHead) else 0)

    alphas = model.arch_parameters()
    assert [tuple(a.shape) for a in alphas] == [(2, NUM_OPS), (3, NUM_OPS), (4, NUM_OPS)]
    box, cls = model.genotypes().values()
    found, missing = (cls, box) if searched == "cls" else (box, cls)
    assert missing is None and isinstance(found, Genotype)

    cfg.optimizer.params.model = model
    held = set(ids(optimizer_params(instantiate(cfg.optimizer))))
    assert held == set(ids(model.weight_parameters()))
    assert not held & set(ids(alphas))

    check_losses(train_losses(model, batch("boxes", model.num_classes))).backward()
    for i, a in enumerate(alphas):
        assert a.grad is not None and a.grad.abs().sum() > 0, f"alpha {i}"


# ------------------------------------------------------------------------------------------------
# 9. Mixed precision


@pytest.mark.parametrize("rel_path", [SEARCH_R18, AUGMENT_R18, RETINA_SEARCH_R18])
def test_training_step_under_autocast(rel_path):
    """Under bfloat16 autocast (search_net.py on a CPU) the head runs in bfloat16, the losses
    stay float32 and finite, and every alpha still gets a gradient."""
    model = build(rel_path)
    dtypes = []
    # The tower runs once on all levels: its output is a list, one tensor per level.
    model.head.cls_tower.register_forward_hook(
        lambda m, i, out: dtypes.extend(o.dtype for o in out)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = train_losses(model, batch("one_empty", model.num_classes))
    assert set(dtypes) == {torch.bfloat16}
    assert all(v.dtype == torch.float32 for v in losses.values())
    check_losses(losses).backward()
    for i, a in enumerate(model.arch_parameters()):
        assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0, i
