"""CUDA graphs for a detector's head (``train.cuda_graphs=True``): on a GPU the FAD head is bound
by the host launching thousands of tiny kernels per step, which a graph replays in one launch.
``benchmarks/gpu_check.py`` checks graphed against eager steps (docs/BENCHMARKS.md)."""

import logging
from typing import Callable, Dict, Hashable, List, Sequence

import torch
from torch import nn

__all__ = ["CPU_REASON", "HeadGraphs", "enable_cuda_graphs"]

logger = logging.getLogger(__name__)

CPU_REASON = "CUDA graphs need a CUDA device: the head runs eagerly"
_AUTOCAST_REASON = "No CUDA graphs under autocast (train.amp.enabled): the head runs eagerly"
_TRACE_REASON = "CUDA graphs do not run while tracing or compiling: the head runs eagerly"


class _Eager(nn.Module):
    """The head's eager forward on tensor arguments, as make_graphed_callables takes it."""

    def __init__(self, head: nn.Module, forward: Callable):
        super().__init__()
        self.head, self._forward = head, forward

    def forward(self, *features: torch.Tensor):
        return self._forward(list(features))


class HeadGraphs:
    """A head's forward that replays CUDA graphs: one pair (forward, backward), captured with
    ``torch.cuda.make_graphed_callables``, per :meth:`signature` of a call; so the alpha step, the
    weight step and inference each get theirs, per canvas orientation (:mod:`fad.modeling.canvas`).

    The head runs eagerly, and says why once: on a CPU, under autocast, while tracing or
    compiling, beyond ``max_graphs`` signatures, and for a signature seen once so far. Graphs read
    the parameters in place (optimizer steps and ``load_state_dict`` reach them) and are captured
    again when their storage moves (``model.to``).

    Args:
        head: the head (a FAD head, or detectron2's ``FCOSHead`` or ``RetinaNetHead``: a forward
            of a list of FPN features); its forward is the eager path.
        max_graphs: most signatures captured; each holds its activations on the GPU.
    """

    def __init__(self, head: nn.Module, *, max_graphs: int = 8):
        self.head, self.eager, self.max_graphs = head, head.forward, max_graphs
        self.graphs: Dict[Hashable, nn.Module] = {}
        self._seen, self._said = set(), set()
        self._params = list(head.parameters())
        self._storage = [p.data_ptr() for p in self._params]

    def signature(self, features: Sequence[torch.Tensor]) -> Hashable:
        """What a recorded graph depends on: the features' shapes, dtypes and ``requires_grad``,
        which parameters require grad, grad mode and train mode."""
        return (
            tuple((tuple(f.shape), f.dtype, f.device, f.requires_grad) for f in features),
            tuple(p.requires_grad for p in self._params),
            torch.is_grad_enabled(),
            self.head.training,
        )

    def _eager(self, reason: str, features: List[torch.Tensor]):
        if reason not in self._said:
            self._said.add(reason)
            logger.warning(reason)
        return self.eager(features)

    def __call__(self, features: List[torch.Tensor]):
        if not all(f.is_cuda for f in features):
            return self._eager(CPU_REASON, features)
        if torch.is_autocast_enabled():
            return self._eager(_AUTOCAST_REASON, features)
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self._eager(_TRACE_REASON, features)
        storage = [p.data_ptr() for p in self._params]
        if storage != self._storage:  # parameters moved: the graphs read stale memory
            self.graphs.clear()
            self._seen.clear()
            self._storage = storage
        key = self.signature(features)
        if key not in self.graphs:
            if key not in self._seen:  # shapes that occur once cost no capture
                self._seen.add(key)
                return self.eager(features)
            if len(self.graphs) >= self.max_graphs:
                return self._eager(
                    f"More than {self.max_graphs} input signatures for CUDA graphs: the head runs "
                    "eagerly for the others (are the shapes fixed? see model.fixed_canvas)",
                    features,
                )
            module = _Eager(self.head, self.eager).train(self.head.training)
            sample = tuple(f.detach().clone().requires_grad_(f.requires_grad) for f in features)
            self.graphs[key] = torch.cuda.make_graphed_callables(
                module, sample, allow_unused_input=True
            )
            logger.info(f"Captured CUDA graphs of the head for signature {len(self.graphs)}")
        return self.graphs[key](*features)


def enable_cuda_graphs(model: nn.Module, *, max_graphs: int = 8) -> bool:
    """Make ``model.head`` replay CUDA graphs (``train.cuda_graphs=True``).

    Args:
        model: a detector with a ``head`` (a FAD one, or detectron2's FCOS or RetinaNet), on its
            device.
        max_graphs: see :class:`HeadGraphs`.

    Returns:
        Whether the graphs were installed: not on a CPU, which is logged as a warning.
    """
    if next(model.parameters()).device.type != "cuda":
        logger.warning(CPU_REASON)
        return False
    model.head.forward = HeadGraphs(model.head, max_graphs=max_graphs)
    return True
