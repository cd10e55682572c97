"""AtomicCheckpointer: fvcore's save, with files that appear whole and with normal permissions;
the checks of the checkpoint a run starts from; periodic checkpoints that keep the latest N."""

import logging
import os
import pickle

import pytest

pytest.importorskip("detectron2", reason="detectron2 is not installed: the engine tests need it")

import torch  # noqa: E402
from detectron2.engine import hooks  # noqa: E402

from fad.engine import AtomicCheckpointer  # noqa: E402
from fad.engine.checkpoint import (  # noqa: E402
    check_checkpoint_file,
    check_start_checkpoint,
    resume_or_load,
)


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


class _Trainer:
    """A trainer's checkpointable part: its iteration."""

    def __init__(self):
        self.iter = 0

    def state_dict(self):
        return {"iteration": self.iter}

    def load_state_dict(self, state):
        self.iter = state["iteration"]


def _run(tmp_path, **checkpointables) -> AtomicCheckpointer:
    return AtomicCheckpointer(torch.nn.Linear(2, 2), str(tmp_path), **checkpointables)


def _checkpoint(path) -> bytes:
    torch.save({"model": torch.nn.Linear(64, 64).state_dict(), "iteration": 9}, path)
    return path.read_bytes()


def _check(path):
    check_checkpoint_file(str(path), what="train.init_checkpoint", remedy="copy it again")


def test_a_whole_checkpoint_passes_and_a_missing_one_is_named(tmp_path):
    _checkpoint(tmp_path / "good.pth")
    _check(tmp_path / "good.pth")
    with open(tmp_path / "good.pkl", "wb") as f:  # detectron2's model zoo format
        pickle.dump({"model": {"w": [1.0, 2.0]}, "__author__": "test"}, f)
    _check(tmp_path / "good.pkl")
    _check("https://example.com/model.pth")  # remote: fetched by detectron2, not checked here
    with pytest.raises(FileNotFoundError, match=r"train.init_checkpoint: no such file: .*gone"):
        _check(tmp_path / "gone.pth")


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[: len(data) // 2], "the zip index at its end is missing"),
        (lambda data: data[:100], "the zip index at its end is missing"),
        (lambda data: b"", "EOFError"),
        (  # torch.load would load it, with one weight changed in silence
            lambda data: data[:2000] + bytes([data[2000] ^ 0xFF]) + data[2001:],
            "fails its CRC check",
        ),
    ],
    ids=["cut_in_half", "cut_after_the_header", "empty", "one_flipped_byte"],
)
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_the_remedy(tmp_path, damage, reason):
    path = tmp_path / "model_final.pth"
    path.write_bytes(damage(_checkpoint(path)))
    with pytest.raises(ValueError) as info:
        _check(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"train.init_checkpoint: {path} cannot be read (")
    assert reason in message and message.endswith("; copy it again")


def test_a_cut_pickle_is_refused(tmp_path):
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": list(range(1000))}})[:-50])
    with pytest.raises(ValueError, match=r"R-50.pkl cannot be read \(UnpicklingError"):
        _check(path)


def test_resume_refuses_a_last_checkpoint_that_is_gone_or_cut_short(tmp_path):
    def check(resume=True, init=""):
        check_start_checkpoint(output_dir=str(tmp_path), init_checkpoint=init, resume=resume)

    check()  # an empty output directory: a resume starts at iteration 0 (and says so)
    _run(tmp_path, trainer=_Trainer()).save("model_0000099")
    check()
    (tmp_path / "last_checkpoint").write_text("model_0000199.pth")
    with pytest.raises(FileNotFoundError, match=r"names 'model_0000199.pth', which is not in"):
        check()
    (tmp_path / "last_checkpoint").write_text("model_0000099.pth")
    data = (tmp_path / "model_0000099.pth").read_bytes()
    (tmp_path / "model_0000099.pth").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"--resume: .*model_0000099.pth cannot be read .* delete"):
        check()
    check(resume=False)  # without --resume the directory's checkpoints are not read
    with pytest.raises(ValueError, match=r"train.init_checkpoint: .*model_0000099.pth cannot"):
        check(resume=False, init=str(tmp_path / "model_0000099.pth"))
    (tmp_path / "last_checkpoint").unlink()
    # Starting again would overwrite them: the user says which to resume from.
    with pytest.raises(FileNotFoundError, match=r"holds checkpoints \(model_0000099.pth\) but no"):
        check()


def test_resume_or_load_continues_after_the_saved_iteration_or_says_it_starts_at_0(
    tmp_path, caplog
):
    trainer = _Trainer()
    with caplog.at_level(logging.WARNING, logger="fad.engine.checkpoint"):
        assert resume_or_load(_run(tmp_path, trainer=trainer), "", resume=True) == 0
    assert f"--resume: no last_checkpoint in {tmp_path}: starting at iteration 0" in caplog.text
    trainer.iter = 41
    _run(tmp_path, trainer=trainer).save("model_0000041")
    resumed = _Trainer()
    assert resume_or_load(_run(tmp_path, trainer=resumed), "", resume=True) == 42
    assert resume_or_load(_run(tmp_path, trainer=_Trainer()), "", resume=False) == 0


@pytest.mark.parametrize("max_to_keep", [1, 2])
def test_periodic_checkpoints_keep_the_latest_n_and_the_final_one(tmp_path, max_to_keep):
    trainer = _Trainer()
    checkpointer = _run(tmp_path, trainer=trainer)
    periodic = hooks.PeriodicCheckpointer(
        checkpointer, period=2, max_iter=7, max_to_keep=max_to_keep
    )
    for i in range(7):
        trainer.iter = i
        periodic.step(i)
    kept = sorted(p.name for p in tmp_path.glob("*.pth"))
    latest = ["model_0000003.pth", "model_0000005.pth"][-max_to_keep:]
    assert kept == [*latest, "model_final.pth"]
    # --resume finds the last one
    assert resume_or_load(_run(tmp_path, trainer=_Trainer()), "", resume=True) == 7
