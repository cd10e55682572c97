"""Small helpers shared by the NAS core and the detectron2 layer (standard library only)."""

import contextlib
import os
import tempfile
from typing import Iterator

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` once the block succeeds.

    Whatever the block writes to the temporary path appears at ``path`` whole or not at all:
    a crash, a full disk or an exception mid-write leaves the previous file intact (and no
    temporary file behind). The directory is created if needed.
    """
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
