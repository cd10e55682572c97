"""Parameter groups for the two optimizers of a search: weights and architecture weights."""

from typing import Any, Dict, List

from detectron2.solver.build import get_default_optimizer_params
from torch import nn

from fad.nas.search_cells import arch_parameters


def get_weight_optimizer_params(*, model: nn.Module, **kwargs: Any) -> List[Dict[str, Any]]:
    """detectron2's ``get_default_optimizer_params`` without the architecture weights, which must
    learn only on the validation split (the original FAD code let SGD move them on the training
    loss). The configs use it in place of detectron2's.

    Args:
        model: the detector (search or derived mode).
        kwargs: passed to ``get_default_optimizer_params`` (``weight_decay_norm``, ...).

    Returns:
        Parameter groups for ``torch.optim`` constructors.
    """
    alphas = set(arch_parameters(model))
    groups = get_default_optimizer_params(model, **kwargs)
    groups = [{**g, "params": [p for p in g["params"] if p not in alphas]} for g in groups]
    return [g for g in groups if g["params"]]


def get_arch_optimizer_params(*, model: nn.Module) -> List[nn.Parameter]:
    """The architecture weights of a search-mode model, for the alpha optimizer.

    Raises:
        ValueError: if the model has none (its head is in derived mode).
    """
    alphas = arch_parameters(model)
    if not alphas:
        raise ValueError("the model has no architecture weights: is its head in search mode?")
    return alphas
