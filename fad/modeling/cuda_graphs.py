"""CUDA graphs for a detector's head (``train.cuda_graphs=True``): replayed, not launched op by op.

On a GPU the FAD head is bound by the host launching its kernels, thousands per step, each a few
microseconds of work. A CUDA graph records the kernels of a forward and of its backward once and
replays each in one launch. :func:`enable_cuda_graphs` makes the head's forward a
:class:`HeadGraphs`, which captures one graph pair per *signature* of a call with
``torch.cuda.make_graphed_callables`` and replays it from then on. The signature is what a
recorded graph depends on: the shapes, dtypes and ``requires_grad`` of the FPN features, which
parameters require grad, grad mode and train/eval mode. So the search's alpha step (only the
alphas require grad: the backward computes alpha gradients alone), its weight step (alphas
frozen: weight and feature gradients) and inference each get their own graphs, per canvas
orientation of :mod:`fad.modeling.canvas`, whose fixed shapes make the signatures few.

The head runs eagerly, and says why once, when graphs cannot serve: on a CPU, under autocast
(``train.amp.enabled``), while tracing, for a signature seen only once so far (the first call of
each is eager: shapes that occur once cost no capture) and beyond ``max_graphs`` signatures.
Graphs read the parameters in place, so optimizer steps and ``load_state_dict`` reach them; when
a parameter's storage moves (``model.to``), the graphs are dropped and captured again.

Unmeasured here: no GPU was at hand when this was written. ``benchmarks/gpu_check.py`` checks
that graphed and eager steps agree and measures what the graphs gain (docs/BENCHMARKS.md).
"""

import logging
from typing import Callable, Dict, Hashable, List, Sequence

import torch
from torch import nn

__all__ = ["CPU_REASON", "HeadGraphs", "enable_cuda_graphs"]

logger = logging.getLogger(__name__)

CPU_REASON = "CUDA graphs need a CUDA device: the head runs eagerly"


class _TensorArgs(nn.Module):
    """A head's eager forward as a module of tensor arguments, as make_graphed_callables takes
    one; its parameters are the head's."""

    def __init__(self, head: nn.Module, forward: Callable):
        super().__init__()
        self.head = head
        self._forward = forward

    def forward(self, *features: torch.Tensor):
        return self._forward(list(features))


class HeadGraphs:
    """A head's forward that replays CUDA graphs, one pair (forward, backward) per signature.

    Args:
        head: the head (a FAD head, ``FADHead`` or ``FADRetinaNetHead``, or detectron2's
            ``FCOSHead`` or ``RetinaNetHead``: a forward of a list of FPN features); its own
            forward is kept as the eager path.
        max_graphs: most signatures captured; each holds its activations on the GPU.
    """

    def __init__(self, head: nn.Module, *, max_graphs: int = 8):
        self.head = head
        self.eager = head.forward
        self.max_graphs = max_graphs
        self.graphs: Dict[Hashable, nn.Module] = {}
        self._seen: Dict[Hashable, int] = {}
        self._params = list(head.parameters())
        self._storage = self._pointers()
        self._said: set = set()

    def _pointers(self) -> tuple:
        return tuple(p.data_ptr() for p in self._params)

    def _say_once(self, reason: str) -> None:
        if reason not in self._said:
            self._said.add(reason)
            logger.warning(reason)

    def _eager_reason(self, features: Sequence[torch.Tensor]) -> str:
        if not all(f.is_cuda for f in features):
            return CPU_REASON
        if torch.is_autocast_enabled():
            return (
                "CUDA graphs do not run under autocast (train.amp.enabled): the head runs eagerly"
            )
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return "CUDA graphs do not run while tracing or compiling: the head runs eagerly"
        return ""

    def signature(self, features: Sequence[torch.Tensor]) -> Hashable:
        """What a recorded graph depends on (see the module's docstring)."""
        return (
            tuple((tuple(f.shape), f.dtype, f.device, f.requires_grad) for f in features),
            tuple(p.requires_grad for p in self._params),
            torch.is_grad_enabled(),
            self.head.training,
        )

    def __call__(self, features: List[torch.Tensor]):
        reason = self._eager_reason(features)
        if reason:
            self._say_once(reason)
            return self.eager(features)
        storage = self._pointers()
        if storage != self._storage:  # parameters moved: the graphs read stale memory
            self.graphs.clear()
            self._seen.clear()
            self._storage = storage
        key = self.signature(features)
        graphed = self.graphs.get(key)
        if graphed is None:
            seen = self._seen[key] = self._seen.get(key, 0) + 1
            if seen < 2:
                return self.eager(features)
            if len(self.graphs) >= self.max_graphs:
                self._say_once(
                    f"More than {self.max_graphs} input signatures for CUDA graphs: the head runs "
                    "eagerly for the others (are the shapes fixed? see model.fixed_canvas)"
                )
                return self.eager(features)
            graphed = self.graphs[key] = self._capture(features)
            logger.info(f"Captured CUDA graphs of the head for signature {len(self.graphs)}")
        return graphed(*features)

    def _capture(self, features: Sequence[torch.Tensor]) -> nn.Module:
        module = _TensorArgs(self.head, self.eager).train(self.head.training)
        sample = tuple(f.detach().clone().requires_grad_(f.requires_grad) for f in features)
        return torch.cuda.make_graphed_callables(module, sample, allow_unused_input=True)


def enable_cuda_graphs(model: nn.Module, *, max_graphs: int = 8) -> bool:
    """Make ``model.head`` replay CUDA graphs (``train.cuda_graphs=True``).

    Args:
        model: a detector with a ``head`` (``FADFCOS``, ``FADRetinaNet``, detectron2's ``FCOS``
            or ``RetinaNet``), on its device.
        max_graphs: see :class:`HeadGraphs`.

    Returns:
        Whether the graphs were installed: not on a CPU, which is logged as a warning.
    """
    device = next(model.parameters()).device
    if device.type != "cuda":
        logger.warning(CPU_REASON)
        return False
    model.head.forward = HeadGraphs(model.head, max_graphs=max_graphs)
    return True
