"""Learning-rate schedules: detectron2's 1x/2x, and the search's single step."""

from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

_schedules = get_config("common/coco_schedule.py")
lr_multiplier_1x = _schedules.lr_multiplier_1x
lr_multiplier_2x = _schedules.lr_multiplier_2x


def step_schedule(*, max_iter: int, step: int, warmup_iters: int):
    """lr x1 until ``step``, then x0.1, after a linear warm-up (FCOS's 1/3 start factor)."""
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[step, max_iter]),
        warmup_length=warmup_iters / max_iter,
        warmup_method="linear",
        warmup_factor=1.0 / 3,
    )
