"""The benchmark's shared state and its order of cases; each case lives in its own module."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import case_big_dag
import case_cache
import case_contention
import case_daemon
import case_process_per_call
import case_round_trips
import case_small_graphs
import case_startup
import datagen
from common import FIT_CONFIG, Results, progress, run_inprocess, timed
from machine import load_average
from procstat import cpu_busy, cpu_snapshot, memory_mb, others_share
from scm_client import Worker


class Bench:
    """The run's shared state: arguments, data, results, the load each case met; cases are modules."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = args.worker_python
        self.results = Results()
        self.tmp = Path(tempfile.mkdtemp(prefix="scm-bench-"))
        self.data = {name: datagen.case_data(name) for name in ("chain", "dag", "small")}
        self.checksums = {name: datagen.checksum(value) for name, value in self.data.items()}
        self.details = self.results.details
        self.details["checksums"] = self.checksums
        self.current_case: tuple[str, tuple[int, int, int] | None] | None = None
        self.waited_total = 0.0
        self.stages: list[tuple[str, float]] | None = None
        self.first_fit = 0.0  # case 5's first fit once warm (s), set by case_startup
        self.warm_fit = 0.0  # case 1's median warm fit (s), set by case_process_per_call

    def helper(self, command: str, *options: str, data: str) -> dict[str, Any]:
        """Run benchmarks/inprocess.py under the worker interpreter on one of the data sets."""
        return run_inprocess(self.python, command, data, self.checksums[data], *options)

    def worker(
        self, *args: str, on_progress: Callable[[dict[str, Any]], None] | None = None
    ) -> Worker:
        return Worker(
            self.python,
            worker_args=("--no-store", *args),
            start_timeout=600,
            on_progress=on_progress,
        )

    def record_stage(self, params: dict[str, Any]) -> None:
        """Progress notifications: when each stage of a fit started (request, fitting, …)."""
        stage = params.get("stage")
        if self.stages is not None and (not self.stages or self.stages[-1][0] != stage):
            self.stages.append((stage, time.perf_counter()))

    def stage_seconds(self, ended: float) -> dict[str, float]:
        marks = (self.stages or []) + [("end", ended)]
        return {name: marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}

    def fit(self, worker: Worker, request: dict[str, Any], **config: Any) -> tuple[float, Any]:
        return timed(
            lambda: worker.fit(request["graph"], request["traces"], **FIT_CONFIG, **config)
        )

    def case(self, name: str, message: str) -> None:
        """Announce a case after waiting (bounded) for a quiet machine; record the load it met.

        The machine may be shared: before each case, wait while other processes keep more
        than ``--quiet-below`` of the CPU busy, for at most ``--max-wait`` seconds per
        case. The busy fraction and load average each case started with are reported.
        """
        waited, busy = 0.0, cpu_busy()
        while (
            busy is not None
            and busy > self.args.quiet_below
            and waited < self.args.max_wait
            and self.waited_total < self.args.max_wait_total
        ):
            if waited == 0:
                progress(
                    f"waiting for a quieter machine before {name!r}: {busy:.0%} of the CPU busy"
                )
            time.sleep(4)
            waited += 5  # the sleep plus cpu_busy's one-second sample
            self.waited_total += 5
            busy = cpu_busy()
        self.end_case()
        load = load_average()
        self.current_case = (name, cpu_snapshot())
        self.details.setdefault("load_by_case", {})[name] = {
            "busy_before": busy,
            "waited_s": waited,
            "load_average": load,
        }
        busy_text = "n/a" if busy is None else f"{busy:.0%}"
        progress(f"{message} [CPU busy {busy_text}, load {load}]")

    def end_case(self) -> None:
        """Record how much CPU other processes used while the last case ran."""
        if self.current_case is None:
            return
        name, started = self.current_case
        self.current_case = None
        share = others_share(started, cpu_snapshot())
        self.details["load_by_case"][name]["others_during"] = share
        if share is not None:
            progress(f"  (other processes used {share:.0%} of the CPU during {name!r})")

    def run(self) -> Results:
        self.details["load_average_start"] = load_average()
        main = self.worker(on_progress=self.record_stage)
        try:
            case_startup.startup(self, main)
            case_process_per_call.process_per_call(self, main)
            case_round_trips.round_trips(self, main)
            case_cache.cache(self, main)
            case_big_dag.big_dag(self, main)
            case_contention.contention(self, main)
            memory = memory_mb(main.pid)  # type: ignore[arg-type]
            self.details["memory_after_dag"] = memory
            case_startup.memory_rows(self, memory)
        finally:
            main.close()
        case_startup.start_variants(self)
        case_small_graphs.many_small_graphs(self)
        case_daemon.daemon(self)
        self.end_case()
        self.details["load_average_end"] = load_average()
        return self.results
