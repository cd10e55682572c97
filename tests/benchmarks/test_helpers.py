"""The benchmarks' shared helpers: interleaved timing and the runs' metrics."""

import json
import sys
from pathlib import Path

import pytest

# The benchmark scripts import their helpers by module name, from their own folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from pipeline import final_metrics  # noqa: E402
from timing import TOTAL, time_interleaved  # noqa: E402


def test_time_interleaved_rotates_the_order_and_drops_the_warmup():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    parts = {"b": lambda: {"inner": 0.5}}
    times = time_interleaved(steps, rounds=2, warmup=1, parts=parts, label="t")
    assert calls == list("abcbcacab")
    assert set(times) == set("abc")
    assert set(times["a"]) == {TOTAL} and set(times["b"]) == {TOTAL, "inner"}
    assert all(len(t[TOTAL].times) == 2 for t in times.values())
    assert times["b"]["inner"].median == 0.5
    assert times["a"][TOTAL].median >= 0


def test_time_interleaved_needs_a_timed_round():
    with pytest.raises(ValueError, match="rounds"):
        time_interleaved({"a": lambda: None}, rounds=0, warmup=1)


def test_final_metrics_are_the_last_value_of_each_scalar(tmp_path):
    assert final_metrics(tmp_path) == {}
    lines = [
        {"iteration": 19, "total_loss": 2.0},
        {"iteration": 19, "total_loss": 1.5, "lr": 0.01},
        {"bbox/AP": 12.5, "bbox/AP50": 30.0, "bbox/APl": float("nan"), "iteration": 20},
    ]
    (tmp_path / "metrics.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    metrics = final_metrics(tmp_path)
    assert metrics["bbox/AP"] == 12.5 and metrics["bbox/AP50"] == 30.0
    assert metrics["total_loss"] == 1.5 and metrics["lr"] == 0.01 and metrics["iteration"] == 20
