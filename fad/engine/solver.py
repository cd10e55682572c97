"""Parameter groups for the two optimizers of a search: weights and architecture weights."""

from typing import Any, Dict, List

from detectron2.solver.build import get_default_optimizer_params
from torch import nn

from fad.nas.search_cells import arch_parameters

__all__ = ["get_arch_optimizer_params", "get_weight_optimizer_params"]


def get_weight_optimizer_params(*, model: nn.Module, **kwargs: Any) -> List[Dict[str, Any]]:
    """detectron2's default parameter groups, without the architecture weights.

    ``get_default_optimizer_params`` collects every parameter of the model; in search mode that
    includes the alphas, which must learn only on the validation split (the original FAD code let
    SGD move them on the training loss). Use this in place of it in configs.

    Args:
        model: the detector (search or derived mode).
        kwargs: passed to ``get_default_optimizer_params`` (``weight_decay_norm``, ...).

    Returns:
        Parameter groups for ``torch.optim`` constructors.
    """
    alphas = set(arch_parameters(model))
    groups = []
    for group in get_default_optimizer_params(model, **kwargs):
        params = [p for p in group["params"] if p not in alphas]
        if params:
            groups.append({**group, "params": params})
    return groups


def get_arch_optimizer_params(*, model: nn.Module) -> List[nn.Parameter]:
    """The architecture weights of a search-mode model, for the alpha optimizer.

    Raises:
        ValueError: if the model has none (its head is in derived mode).
    """
    alphas = arch_parameters(model)
    if not alphas:
        raise ValueError("the model has no architecture weights: is its head in search mode?")
    return alphas
