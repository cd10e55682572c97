"""A DetectionCheckpointer whose files are never half-written."""

import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from fad.utils import atomic_path

__all__ = ["AtomicCheckpointer"]


def _atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, synced, then renamed into place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


class AtomicCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` with atomic checkpoint files and ``last_checkpoint`` tag.

    fvcore's ``save`` streams ``torch.save`` into the final file name, so a run killed while
    saving leaves a truncated checkpoint that ``--resume`` then picks up. Here the file appears
    only once complete. Local paths only (remote URIs fall back to the parent's behaviour).
    """

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        if not os.path.isdir(self.save_dir):
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        if not os.path.isdir(self.save_dir):
            return super().tag_last_checkpoint(last_filename_basename)
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode()))
