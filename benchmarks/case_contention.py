"""Case 6, contention (info): chain fits alone, then beside one busy-loop process."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from common import Row, _wait_warm, fmt_s, fmt_x, median
from scm_client import Worker

if TYPE_CHECKING:
    from bench import Bench


def contention(bench: Bench, main: Worker) -> None:
    """Info: chain fits while one busy-loop process competes for the cores.

    Shows how sensitive a fit is to other load on the machine, with the worker's
    default threads (BLAS/OpenMP = cores) and with ``--threads 1``.
    """
    chain, n = bench.data["chain"], bench.args.contention_fits
    bench.case("6", f"contention: {n} chain fits quiet, then {n} beside one busy-loop process")

    def fits(worker: Worker) -> list[float]:
        return [bench.fit(worker, chain, seed=1, cache=False)[0] for _ in range(n)]

    def beside_hog(worker: Worker) -> list[float]:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            return fits(worker)
        finally:
            hog.kill()
            hog.wait()

    inproc = bench.helper("contention", "--repeats", str(n), data="chain")
    measured = {
        "default threads": (fits(main), beside_hog(main)),
        "in-process DoWhy (defaults)": (inproc["quiet_s"], inproc["busy_s"]),
    }
    with bench.worker("--threads", "1") as one:
        one.start()
        _wait_warm(one)
        measured["--threads 1"] = (fits(one), beside_hog(one))
    for label, (quiet, hogged) in measured.items():
        slowdown = median(hogged) / median(quiet)
        bench.results.add(
            Row(
                "6 contention",
                f"chain fit, {label if label.startswith('in-') else 'worker with ' + label}: "
                "quiet (baseline) vs one busy process beside it",
                fmt_s(median(quiet)),
                fmt_s(median(hogged)),
                f"{fmt_x(slowdown)} slower",
                "info",
                None,
            )
        )
    bench.details["contention"] = {
        k: {"quiet_s": q, "busy_s": h} for k, (q, h) in measured.items()
    }
