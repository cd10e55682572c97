"""What the benchmarks that run this project's scripts share: running one, reading its COCO AP.

The benchmark scripts run as ``python benchmarks/<name>.py``, which puts this folder on the
import path.
"""

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

__all__ = ["ROOT", "coco_ap", "run_phase"]

ROOT = Path(__file__).resolve().parents[1]
AP_ROW = re.compile(r"copypaste: ([-\d.na]+(?:,[-\d.na]+){5})\s*$", re.M)


def run_phase(
    name: str, args: List[str], *, env: Optional[Mapping[str, str]] = None
) -> Tuple[str, float]:
    """Run one script of the repository root to completion; its output and wall seconds.

    Args:
        name: the phase's name in the progress lines.
        args: the script and its arguments.
        env: the environment (default: this process's).

    Exits with the end of the script's output if the script fails.
    """
    print(f"[{name}] python {' '.join(args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"[{name}] failed with exit status {proc.returncode}:\n{output[-4000:]}")
    print(f"[{name}] done in {seconds:.0f} s", flush=True)
    return output, seconds


def coco_ap(output: str) -> Dict[str, float]:
    """AP and AP50 from detectron2's ``copypaste:`` lines (the last evaluation printed)."""
    rows = AP_ROW.findall(output)
    if not rows:
        sys.exit(f"no COCO evaluation in the output:\n{output[-4000:]}")
    ap, ap50 = (float(v) for v in rows[-1].split(",")[:2])
    return {"AP": ap, "AP50": ap50}
