"""The benchmarks' timing: cases interleaved round by round, measured with torch.utils.benchmark.

A ratio of two cases is only as good as the conditions they ran under, and on a shared machine a
busy spell slows whatever runs during it. So the cases run in rounds, one call of each per round,
the order rotated every round, and each case's figures are the median and interquartile range of
its rounds (:class:`torch.utils.benchmark.Measurement`). ``torch.utils.benchmark.Timer`` cannot
interleave (it times one statement at a time, after two untimed calls of its own), so its clock
(``torch.utils.benchmark.timer``, which synchronizes the accelerator before reading the time) and
its ``Measurement`` are used without it.
"""

from typing import Callable, Dict, List, Mapping, Optional

import torch
from torch.utils.benchmark import Measurement, TaskSpec, timer

__all__ = ["TOTAL", "time_interleaved"]

#: The key of a case's own calls in :func:`time_interleaved`'s result.
TOTAL = "total"


def time_interleaved(
    steps: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int,
    parts: Optional[Mapping[str, Callable[[], Mapping[str, float]]]] = None,
    label: str = "",
) -> Dict[str, Dict[str, Measurement]]:
    """Call every step once per round, ``warmup`` untimed rounds first, the order rotated each
    round (case ``r mod n`` first in round ``r``).

    Args:
        steps: the cases by name: each a call of what is timed (its result is dropped).
        rounds: timed rounds, at least 1.
        warmup: untimed rounds before them.
        parts: per case (optional), a function read after each of its calls that returns the
            seconds of parts of that call measured inside it (a trainer's logged alpha step,
            hooks around submodules), by part name.
        label: the measurements' label.

    Returns:
        Per case, :data:`TOTAL`: the Measurement of its calls (``times``: one per timed round, in
        round order), and one Measurement per part its ``parts`` function returned.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names, parts = list(steps), parts or {}
    times: Dict[str, Dict[str, List[float]]] = {name: {} for name in names}
    for r in range(warmup + rounds):
        first = r % len(names)
        for name in names[first:] + names[:first]:
            start = timer()
            steps[name]()
            elapsed = timer() - start
            measured = {TOTAL: elapsed, **(parts[name]() if name in parts else {})}
            if r >= warmup:
                for part, seconds in measured.items():
                    times[name].setdefault(part, []).append(seconds)
    threads = torch.get_num_threads()
    return {
        name: {
            part: Measurement(
                number_per_run=1,
                raw_times=ts,
                task_spec=TaskSpec(
                    stmt=name, setup="", label=label, sub_label=part, num_threads=threads
                ),
            )
            for part, ts in case.items()
        }
        for name, case in times.items()
    }
