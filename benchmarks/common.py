"""What every case shares: the clock, progress to stderr, timing, the result rows, formats."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scm_client import Worker

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
T0 = time.perf_counter()


def default_worker_python() -> str:
    """The worker interpreter every driver defaults to: $SCM_WORKER_PYTHON, else .venv-worker."""
    return os.environ.get("SCM_WORKER_PYTHON") or str(ROOT / ".venv-worker" / "bin" / "python")


def add_worker_python(parser: Any) -> None:
    """Every driver's --worker-python option."""
    parser.add_argument(
        "--worker-python",
        default=default_worker_python(),
        help="the worker's interpreter (default: $SCM_WORKER_PYTHON, else .venv-worker/bin/python)",
    )
FIT_CONFIG = {"validate_r2": False}  # report R², never fail a timed call on it
#: issue 17's fit targets: the 100-node fit's time as a share of DoWhy's, and the 40-graph
#: batch's throughput on WorkerPool(2) as a multiple of sequential in-process DoWhy's
DAG_TARGET = 0.33
BATCH_TARGET = 3.0


def run_inprocess(python: str, command: str, data: str, checksum: str, *options: str) -> dict[str, Any]:
    """benchmarks/inprocess.py under the worker's interpreter, its JSON result.

    The helper builds its own copy of the data set ``data``; ``checksum`` is the driver's
    (``datagen.checksum``), so a helper that generated other data fails here instead of
    being compared side by side with the worker on different rows.
    """
    with tempfile.TemporaryDirectory(prefix="scm-inprocess-") as tmp:
        out = Path(tmp) / "out.json"
        argv = [python, str(BENCH / "inprocess.py"), command, "--out", str(out), "--data", data, *options]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        result: dict[str, Any] = json.loads(out.read_text())
    if result["checksum"] != checksum:
        raise RuntimeError(f"{data}: the helper generated different data ({result['checksum']})")
    return result


def progress(message: str) -> None:
    print(f"[bench {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    case: str
    measure: str
    baseline: str
    worker: str
    ratio: str
    target: str
    met: bool | None  # None: reported, no target
    # numbers for the plot: the compared value, its target and which side is good
    value: float | None = None
    goal: float | None = None
    better: str = ""  # "higher" or "lower"
    unit: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        verdict = "" if row.met is None else ("  [met]" if row.met else "  [MISSED]")
        progress(
            f"  {row.case} | {row.measure}: {row.baseline} vs {row.worker} → {row.ratio} ({row.target}){verdict}"
        )


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.3f} ms" if seconds < 0.001 else f"{seconds * 1000:.2f} ms"


def fmt_x(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"


def _wait_warm(worker: Worker) -> None:
    """Poll the handshake until the worker's warm-up (DoWhy import, joblib start) is done."""
    while not worker.call("initialize", {"client": "bench", "protocol_version": 1})["warm"]:
        time.sleep(0.01)


def _start_warm(workers: list[Worker], start: Callable[[], None]) -> None:
    """Start, then wait until every worker is warm: baselines are timed warm too."""
    start()
    for worker in workers:
        _wait_warm(worker)


def _without_cache_flag(raw: Any) -> Any:
    copy = json.loads(json.dumps(raw))
    copy.get("metadata", {}).pop("cache_hit", None)
    return copy


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))
