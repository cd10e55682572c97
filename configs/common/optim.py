"""detectron2's SGD, with parameter groups that never contain the architecture weights."""

from detectron2.model_zoo import get_config

from fad.engine.solver import get_weight_optimizer_params

SGD = get_config("common/optim.py").SGD
SGD.params._target_ = get_weight_optimizer_params
