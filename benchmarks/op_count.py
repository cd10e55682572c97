"""Count the ATen operations a piece of code dispatches: a device-free proxy for kernel launches.

On a GPU a search step of many small ops is bound by the host launching kernels, and every ATen
operation that computes something launches at least one kernel. Counting the operations on the
CPU is deterministic (no timer, no noise), so it is a figure any machine can measure and compare.
:class:`OpCounter` is a ``TorchDispatchMode``: it sees every operation dispatched below autograd,
forward and backward (the autograd engine carries the mode into its backward pass), as
``aten.<op>.<overload>``. An operation called from inside another one (a kernel's own helper
calls) is not counted: only what the framework dispatches, as a GPU would launch it.

Not every operation launches a kernel: views and metadata operations (``view``, ``permute``,
``detach``, ...: every overload whose schema says its output aliases its input) and bare
allocations (``empty``) only make a new tensor header. :func:`launches_kernel` tells them apart.

Where the CPU has a faster form of its own, :func:`gpu_forms` makes a model take the GPU's, so
that what is counted on the CPU is what a GPU dispatches, by the same code.
"""

import collections
import contextlib
from typing import Counter, Dict, Iterator, Optional

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from fad.nas.ops import DilatedDepthwiseConv

__all__ = ["OpCounter", "gpu_forms", "launches_kernel"]

#: Operations that make or reinterpret a tensor header without touching its data, beyond the
#: overloads their schemas mark as views (``OpOverload.is_view``).
NO_KERNEL_OPS = frozenset(
    {
        "_unsafe_view",
        "_reshape_alias",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "lift_fresh",
        "resize_",
        "set_",
    }
)


def launches_kernel(func: torch._ops.OpOverload) -> bool:
    """Whether ``func`` would launch a kernel on a GPU (it computes or copies data).

    Args:
        func: an ATen operator overload, as a ``TorchDispatchMode`` receives it.

    Returns:
        ``False`` for views, metadata operations and bare allocations; ``True`` otherwise.
    """
    return not (func.is_view or func.overloadpacket.__name__ in NO_KERNEL_OPS)


def gpu_forms(model: nn.Module) -> nn.Module:
    """Make ``model`` run, on any device, the forms CUDA tensors take: the direct dilated
    depthwise conv (the CPU's polyphase form adds the copies and views of its sub-grids).

    Returns:
        ``model``, changed in place.
    """
    for m in model.modules():
        if isinstance(m, DilatedDepthwiseConv):
            m.direct = True
    return model


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while active, optionally per named phase.

    Use as a context manager; :meth:`phase` labels what is dispatched inside it (the label of
    everything else is ``None``)::

        with OpCounter() as counter:
            step()
        counter.total(), counter.kernels()
    """

    def __init__(self):
        super().__init__()
        self.counts: Dict[Optional[str], Counter[torch._ops.OpOverload]] = collections.defaultdict(
            collections.Counter
        )
        self._phase: Optional[str] = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[self._phase][func] += 1
        return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count what is dispatched inside the block under ``name``."""
        outer, self._phase = self._phase, name
        try:
            yield
        finally:
            self._phase = outer

    def by_op(self, phase: Optional[str] = "all") -> Counter[str]:
        """Counts per operation name (``aten.conv2d.default`` style) of one phase, or of all."""
        out: Counter[str] = collections.Counter()
        for func, n in self._funcs(phase).items():
            out[str(func)] += n
        return out

    def total(self, phase: Optional[str] = "all") -> int:
        """All dispatched operations of one phase (``None``: outside any phase), or of all."""
        return sum(self._funcs(phase).values())

    def kernels(self, phase: Optional[str] = "all") -> int:
        """The dispatched operations that would launch a kernel (see :func:`launches_kernel`)."""
        return sum(n for func, n in self._funcs(phase).items() if launches_kernel(func))

    def _funcs(self, phase: Optional[str]) -> Counter[torch._ops.OpOverload]:
        if phase != "all":
            return self.counts.get(phase, collections.Counter())
        out: Counter[torch._ops.OpOverload] = collections.Counter()
        for counts in self.counts.values():
            out.update(counts)
        return out
