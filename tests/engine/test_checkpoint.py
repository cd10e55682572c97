"""AtomicCheckpointer: fvcore's save, with files that appear whole and with normal permissions."""

import os

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402

from fad.engine import AtomicCheckpointer  # noqa: E402


def test_atomic_checkpointer_never_leaves_a_partial_file(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000000")
    good = (tmp_path / "model_0000000.pth").read_bytes()

    def failing_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        checkpointer.save("model_0000000")
    with pytest.raises(OSError, match="disk full"):
        checkpointer.save("model_0000001")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000000.pth"]
    assert (tmp_path / "model_0000000.pth").read_bytes() == good
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000000.pth"


def test_checkpoints_get_the_users_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        AtomicCheckpointer(torch.nn.Linear(2, 2), str(tmp_path)).save("model_final")
    finally:
        os.umask(old)
    for name in ("model_final.pth", "last_checkpoint"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name


def test_reading_and_remote_paths_go_to_detectron2s_path_manager(tmp_path):
    checkpointer = AtomicCheckpointer(torch.nn.Linear(2, 2), str(tmp_path))
    checkpointer.save("model_0000000")
    assert checkpointer.has_checkpoint()
    assert checkpointer.get_checkpoint_file() == str(tmp_path / "model_0000000.pth")
    checkpointer.load(checkpointer.get_checkpoint_file())
