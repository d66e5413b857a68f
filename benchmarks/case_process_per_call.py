"""Case 1: the old one-process-per-request design against fits on the warm worker."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from common import BENCH, ROOT, Row, fmt_s, fmt_x, median, progress, timed
from scm_client import Worker

if TYPE_CHECKING:
    from bench import Bench


def process_per_call(bench: Bench, main: Worker) -> None:
    """Case 1: the old design vs a warm worker on the chain, interleaved."""
    runs, per_run = bench.args.ppc_runs, bench.args.warm_per_ppc
    bench.case(
        "1",
        f"case 1: process-per-call ×{runs} vs warm worker ×{runs * per_run}, chain of 1000 rows, seed 1",
    )
    request = dict(bench.data["chain"], config={"seed": 1, "quality": "GOOD"})
    request_bytes = json.dumps(request).encode()
    ppc, warm, ppc_r2, warm_r2 = [], [], [], []
    for i in range(runs):
        seconds, proc = timed(
            lambda: subprocess.run(
                [bench.python, str(BENCH / "process_per_call.py")],
                input=request_bytes,
                capture_output=True,
                check=True,
                cwd=ROOT,
            )
        )
        ppc.append(seconds)
        ppc_r2.append(json.loads(proc.stdout)["mean_r2"])
        for _ in range(per_run):
            seconds, result = bench.fit(main, bench.data["chain"], seed=1, cache=False)
            warm.append(seconds)
            warm_r2.append(result.mean_r2)
        progress(
            f"  run {i + 1}/{runs}: process-per-call {fmt_s(ppc[-1])}, warm worker {fmt_s(warm[-1])}"
        )
    bench.warm_fit = median(warm)
    bench.details["case1"] = {
        "process_per_call_s": ppc,
        "warm_worker_s": warm,
        "process_per_call_mean_r2": ppc_r2[0],
        "worker_mean_r2": warm_r2[0],
    }
    ratio = median(ppc) / bench.warm_fit
    bench.results.add(
        Row(
            "1 process-per-call vs warm worker",
            "fit, 3-node chain, 1000 rows (median wall)",
            fmt_s(median(ppc)),
            fmt_s(bench.warm_fit),
            f"{fmt_x(ratio)} faster",
            "≥ 8× faster",
            ratio >= 8,
            ratio,
            8,
            "higher",
            "×",
        )
    )
    first = bench.first_fit / bench.warm_fit
    bench.results.add(
        Row(
            "5 start-up",
            "first fit once ready (scm-worker) vs warm fit (baseline), chain",
            fmt_s(bench.warm_fit),
            fmt_s(bench.first_fit),
            fmt_x(first),
            "≤ 1.5×",
            first <= 1.5,
            first,
            1.5,
            "lower",
            "×",
        )
    )
