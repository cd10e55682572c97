"""The helpers the NAS core and the detectron2 layer share (standard library only)."""

import contextlib
import os
import uuid
from typing import IO, Iterable, Iterator

__all__ = ["atomic_open", "frozen"]


@contextlib.contextmanager
def frozen(params: Iterable) -> Iterator[None]:
    """Within the block, the tensors of ``params`` that require grad do not (so no graph is built
    through them); they do again after it, also when the block raises."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open ``path`` for writing so that it appears whole or not at all.

    The block writes to a new temporary file beside ``path``; once the block succeeds the file is
    flushed to disk and renamed over ``path``. A crash, a full disk or an exception mid-write
    leaves the previous file as it was, and no temporary file behind. The file gets the
    permissions of any file the user creates (``open`` with the umask, not ``mkstemp``'s 0600).
    The directory is created if needed.

    Args:
        path: the file to write.
        mode: ``"w"`` or ``"wb"``.
        kwargs: passed to :func:`open` (``encoding``, ...).

    Yields:
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
