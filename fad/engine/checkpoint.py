"""A DetectionCheckpointer whose files are never half-written."""

from typing import Any

from detectron2.checkpoint import DetectionCheckpointer

from fad.utils import atomic_open

__all__ = ["AtomicCheckpointer"]


class _AtomicLocalWrites:
    """A path manager that opens local files for writing with :func:`fad.utils.atomic_open`
    and hands everything else (reads, remote paths) to the wrapped one."""

    def __init__(self, path_manager: Any):
        self._path_manager = path_manager

    def open(self, path: str, mode: str = "r", **kwargs: Any):
        if mode in ("w", "wb") and "://" not in path:
            return atomic_open(path, mode, **kwargs)
        return self._path_manager.open(path, mode, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._path_manager, name)


class AtomicCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` whose checkpoints and ``last_checkpoint`` tag appear whole.

    fvcore's ``save`` streams ``torch.save`` into the final file name, so a run killed while
    saving leaves a truncated checkpoint that ``--resume`` then picks up. Here fvcore's own
    ``save`` and ``tag_last_checkpoint`` write through :func:`fad.utils.atomic_open`, so a file
    appears only once complete. Remote paths are written as detectron2 writes them.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.path_manager = _AtomicLocalWrites(self.path_manager)
