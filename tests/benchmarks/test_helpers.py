"""The benchmarks' shared helpers: interleaved timing and the runs' metrics."""

import json
import statistics
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


def test_variance_decomposition_tells_a_genotype_effect_from_seed_noise():
    from search_vs_random import variance_decomposition

    noise = [-0.5, 0.0, 0.5]  # the same training-seed spread for every genotype
    apart = {f"g{i}": [3.0 * i + e for e in noise] for i in range(6)}
    v = variance_decomposition(apart, permutations=2000)
    assert v["within"] == pytest.approx(0.25)
    assert v["between"] == pytest.approx(9.0 * statistics.variance(range(6)) - 0.25 / 3)
    assert v["p"] < 0.01 and v["icc"] > 0.95
    # Every genotype with the same spread of runs: all the variance is within genotypes.
    same = {f"g{i}": [[0.0, 3.0, 6.0][(i + k) % 3] for k in range(3)] for i in range(6)}
    v = variance_decomposition(same, permutations=2000)
    assert v["within"] == 9.0 and v["between"] == 0.0 and v["icc"] == 0.0 and v["p"] > 0.5


def test_bootstrap_margin_brackets_the_difference_of_the_group_means():
    from search_vs_random import bootstrap_margin

    searched = [[12.0, 13.0, 14.0], [12.5, 13.5, 13.0]]
    baseline = [[10.0, 11.0, 10.5], [9.5, 10.0, 11.0], [10.5, 10.0, 11.5]]
    low, high = bootstrap_margin(searched, baseline, reps=2000)
    assert 0 < low < 13.0 - 10.44 < high < 4.0  # the margin of the means is about +2.56
    low, high = bootstrap_margin(baseline, searched, reps=2000)
    assert -4.0 < low < high < 0
