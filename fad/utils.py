"""The helpers the NAS core and the detectron2 layer share (standard library only)."""

import contextlib
import os
import uuid
from typing import IO, Iterable, Iterator


@contextlib.contextmanager
def frozen(params: Iterable) -> Iterator[None]:
    """Within the block, the tensors of ``params`` that require grad do not (no graph is built
    through them); after it they do again, also when it raises."""
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
    """Open ``path`` (its directory made if needed) to write so that it appears whole or not at
    all: the block writes a temporary file beside it, synced and renamed over ``path`` once the
    block succeeds, removed if it fails. The file gets the umask's permissions (not mkstemp's 0600).

    Args:
        mode: ``"w"`` or ``"wb"``.
        kwargs: passed to :func:`open` (``encoding``, ...).
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
