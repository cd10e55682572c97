"""Search, train and evaluate as a user does, for the benchmarks: this project's scripts run as
subprocesses, one directory per run, and their figures read from the runs' ``metrics.json``.

A run's AP is the evaluator's result as detectron2 records it: ``EvalHook`` puts the flattened
results of the evaluation after the last iteration into the trainer's EventStorage (COCO's
``bbox/AP``, ``bbox/AP50``, ...) and the ``JSONWriter`` of ``default_writers`` writes them to
``metrics.json`` in the run's ``train.output_dir``; a search's ``cost/expected`` arrives there
the same way. Each run also leaves ``result.json`` (its command and wall seconds): a run whose
``result.json`` records the same command is not run again, so a second invocation with the same
output directory reuses the runs it has.

The benchmark scripts run as ``python benchmarks/<name>.py``, which puts this folder on the
import path.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

__all__ = ["AP", "AP50", "ROOT", "Pipeline", "Run", "final_metrics"]

ROOT = Path(__file__).resolve().parents[1]
#: The keys of COCOEvaluator's box AP and AP50 (0-100) in ``metrics.json``.
AP, AP50 = "bbox/AP", "bbox/AP50"


class Run(NamedTuple):
    """A finished run."""

    output_dir: Path
    seconds: float  # wall time (of the earlier invocation's run, if reused)
    reused: bool  # True: an earlier invocation's run of the same command
    metrics: Dict[str, float]  # the last value of every scalar in its metrics.json


def final_metrics(output_dir: Path) -> Dict[str, float]:
    """The last value of every scalar in a run's ``metrics.json`` (``{}`` if it has none).

    Args:
        output_dir: the run's ``train.output_dir``.
    """
    path = output_dir / "metrics.json"
    if not path.is_file():
        return {}
    metrics: Dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:  # one JSON object per line, by iteration
            metrics.update(json.loads(line))
    return metrics


class Pipeline:
    """Runs the scripts under ``out``, each run in ``out/<tag>``.

    Args:
        out: the directory of all runs.
        threads: OpenMP / MKL threads of every run (``None``: this process's environment).
    """

    def __init__(self, out: Path, *, threads: Optional[int] = None):
        self.out = out
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if threads is not None:
            self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))

    def run(self, tag: str, args: Sequence[str]) -> Run:
        """Run ``python args`` from the repository root, unless ``out/tag`` holds a finished run
        of the same command.

        Exits with the end of the script's output if the script fails.
        """
        run_dir = self.out / tag
        record = run_dir / "result.json"
        command = list(args)
        if record.is_file():
            result = json.loads(record.read_text())
            if result["command"] == command:
                print(f"[{tag}] reused the finished run in {run_dir}", flush=True)
                return Run(run_dir, result["seconds"], True, final_metrics(run_dir))
        # detectron2's JSONWriter appends: an earlier run's figures must not pass for this one's.
        (run_dir / "metrics.json").unlink(missing_ok=True)
        print(f"[{tag}] python {' '.join(command)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, *command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            sys.exit(f"[{tag}] failed with exit status {proc.returncode}:\n{output[-4000:]}")
        print(f"[{tag}] done in {seconds:.0f} s", flush=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"command": command, "seconds": seconds}))
        return Run(run_dir, seconds, False, final_metrics(run_dir))

    def search(
        self, tag: str, config: str, *, iters: int, seed: int, overrides: Sequence[str] = ()
    ) -> Run:
        """``search_net.py`` on ``config`` for ``iters`` iterations; its genotypes are in
        ``<output_dir>/genotype.log``.

        Args:
            overrides: more ``key=value`` overrides (e.g. ``search.cost_weight=0.1``).
        """
        return self.run(
            tag,
            [
                "search_net.py",
                "--config-file",
                config,
                f"train.max_iter={iters}",
                f"train.checkpointer.period={iters}",  # genotypes and a checkpoint at the end
                f"train.seed={seed}",
                *overrides,
                f"train.output_dir={self.out / tag}",
            ],
        )

    def train(
        self,
        tag: str,
        config: str,
        *,
        iters: int,
        seed: int,
        genotype_file: Optional[Path] = None,
        overrides: Sequence[str] = (),
    ) -> Run:
        """``train_net.py`` on ``config`` (with ``--genotype-file``, if given) for ``iters``
        iterations, evaluated at the end: its ``metrics`` hold :data:`AP` and :data:`AP50`.

        Args:
            overrides: more ``key=value`` overrides (e.g. ``train.init_checkpoint=...``).

        Exits if the run recorded no evaluation.
        """
        genotypes = [] if genotype_file is None else ["--genotype-file", str(genotype_file)]
        args: List[str] = ["train_net.py", "--config-file", config, *genotypes]
        args += [
            f"train.{key}={iters}" for key in ("max_iter", "eval_period", "checkpointer.period")
        ]
        args += [f"train.seed={seed}", *overrides, f"train.output_dir={self.out / tag}"]
        run = self.run(tag, args)
        if AP not in run.metrics:
            sys.exit(f"[{tag}] no {AP} in {run.output_dir / 'metrics.json'}: no evaluation ran")
        return run
