"""A DetectionCheckpointer whose files are never half-written, and the pre-flight checks of the
checkpoint a run starts from (one error line, not a traceback from deep in the loader)."""

import logging
import os
import pickle
import zipfile
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer

from fad.utils import atomic_open


class _AtomicLocalWrites:
    """A path manager that writes local files through :func:`fad.utils.atomic_open` and hands
    the rest (reads, remote paths) to the wrapped one."""

    def __init__(self, path_manager: Any):
        self._path_manager = path_manager

    def open(self, path: str, mode: str = "r", **kwargs: Any):
        if mode in ("w", "wb") and "://" not in path:
            return atomic_open(path, mode, **kwargs)
        return self._path_manager.open(path, mode, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._path_manager, name)


class AtomicCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` whose checkpoints and ``last_checkpoint`` tag appear whole
    (fvcore's ``save`` streams into the final file: a run killed while saving would leave a
    truncated checkpoint for ``--resume``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.path_manager = _AtomicLocalWrites(self.path_manager)


def check_checkpoint_file(path: str, *, what: str, remedy: str) -> None:
    """Refuses, in one line, a local checkpoint that is missing, cut short or damaged: a zip
    (``torch.save``'s format) by its index and CRCs, unpickling nothing; a ``.pkl`` (detectron2's
    model zoo) or a legacy torch file by reading it through. Remote paths are left alone.

    Args:
        what: where the path comes from, to start the message; remedy: what to do, to end it.

    Raises:
        FileNotFoundError, ValueError: naming the file and why.
    """
    if "://" in path:
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: no such file: {path}")
    reason = None
    try:
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"
            f.seek(0)
            if zipped:
                damaged = zipfile.ZipFile(f).testzip()
                reason = damaged and f"its record {damaged} fails its CRC check"
            elif path.endswith(".pkl"):
                pickle.load(f, encoding="latin1")
            else:
                torch.load(f, map_location="cpu", weights_only=False)
    except zipfile.BadZipFile:
        reason = "the zip index at its end is missing"
    except Exception as e:  # whatever the reader raises: the message says which file and why
        reason = f"{type(e).__name__}: {e}"
    if reason:
        raise ValueError(
            f"{what}: {path} cannot be read ({reason}): the file is cut short or damaged (a disk "
            f"that filled up, a copy cut short); {remedy}"
        )


def check_init_checkpoint(path: str) -> None:
    """:func:`check_checkpoint_file` for ``train.init_checkpoint`` (empty: none to load)."""
    if path:
        remedy = "copy or download it again, or set train.init_checkpoint to another file"
        check_checkpoint_file(path, what="train.init_checkpoint", remedy=remedy)


def check_start_checkpoint(*, output_dir: str, init_checkpoint: str, resume: bool) -> None:
    """Checks the checkpoint :func:`resume_or_load` will load (FileNotFoundError, ValueError):
    with ``--resume`` the one ``OUTPUT/last_checkpoint`` names (refusing checkpoints without that
    tag, which a start from 0 would overwrite), else ``train.init_checkpoint``."""
    tag = os.path.join(output_dir, "last_checkpoint")
    restart = f"or delete {tag} to start again from iteration 0"
    checkpointer = DetectionCheckpointer(torch.nn.Module(), output_dir)
    if resume and checkpointer.has_checkpoint():
        path = checkpointer.get_checkpoint_file()
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"--resume: {tag} names {os.path.basename(path)!r}, which is not in "
                f"{output_dir}: put it back, write the name of another checkpoint there into "
                f"last_checkpoint, {restart}"
            )
        remedy = f"write the name of an earlier checkpoint of {output_dir} into {tag}, {restart}"
        check_checkpoint_file(path, what="--resume", remedy=remedy)
    elif resume and os.path.isdir(output_dir) and checkpointer.get_all_checkpoint_files():
        names = sorted(os.path.basename(p) for p in checkpointer.get_all_checkpoint_files())
        raise FileNotFoundError(
            f"--resume: {output_dir} holds checkpoints ({', '.join(names)}) but no "
            f"last_checkpoint: write the name of the one to resume from into {tag}"
        )
    else:
        check_init_checkpoint(init_checkpoint)


def resume_or_load(checkpointer: AtomicCheckpointer, path: str, *, resume: bool) -> int:
    """``checkpointer.resume_or_load`` for a trainer among its checkpointables, warning when
    ``--resume`` finds nothing to resume from.

    Returns:
        The iteration to start at: the one after the checkpoint's, or 0.
    """
    resuming = resume and checkpointer.has_checkpoint()
    if resume and not resuming:
        logging.getLogger(__name__).warning(
            f"--resume: no last_checkpoint in {checkpointer.save_dir}: starting at iteration 0"
            + (f" from {path}" if path else "")
        )
    checkpointer.resume_or_load(path, resume=resume)
    # A checkpoint stores the iteration that had just finished.
    return checkpointer.checkpointables["trainer"].iter + 1 if resuming else 0
