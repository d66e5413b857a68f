"""Suite cluster → CLUSTER.md: the 40-graph batch on a loopback Dask cluster vs WorkerPool(2).

The cluster is real processes on 127.0.0.1 started from the worker's interpreter: ``dask
scheduler`` and two ``dask worker --nthreads 1 --preload scm_worker.cluster`` (2 × 1 thread,
the machine's two cores), driven through a gateway (``WorkerPool(scheduler=...)``). Each
round fits the 40 small graphs (seeds 1000 + i, cache off) on ``WorkerPool(2)`` and on the
cluster, back to back, the order alternating; every result must be the same on both. The
cluster's time against the pool's is reported, not targeted (it pays for shipping the data
to the Dask workers and back). Against sequential DoWhy, see FIT.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datagen
from rounds import TABLE, clock, paired, row
from scm_client import WorkerPool

TITLE = "The 40-graph batch on a loopback Dask cluster against the local WorkerPool(2)"


class LoopbackCluster:
    """``dask scheduler`` + 2 ``dask worker --nthreads 1 --preload scm_worker.cluster``."""

    def __init__(self, python: str, directory: Path) -> None:
        self.python, self.directory = python, directory
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def spawn(self, name: str, *argv: str) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        self.procs.append(subprocess.Popen([self.python, "-m", *argv], stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True,
                                           cwd=self.directory))

    def __enter__(self) -> LoopbackCluster:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        """Scheduler first; the workers join; a Dask client waits for both (no sleeping)."""
        file = self.directory / "scheduler.json"
        self.spawn("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                   "--port", "0", "--no-dashboard", "--scheduler-file", str(file))
        for i in range(2):
            self.spawn(f"worker{i}", "distributed.cli.dask_worker", "--scheduler-file", str(file),
                       "--nthreads", "1", "--preload", "scm_worker.cluster", "--no-dashboard",
                       "--host", "127.0.0.1", "--name", f"w{i}",
                       "--local-directory", str(self.directory / "dask"))
        wait = ("import sys; from distributed import Client; "
                "c = Client(scheduler_file=sys.argv[1], timeout='600s'); "
                "c.wait_for_workers(2, timeout=600); c.close()")
        subprocess.run([self.python, "-c", wait, str(file)], check=True, capture_output=True)
        self.address = json.loads(file.read_text())["address"]

    def __exit__(self, *_: object) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run(ctx: Any, log: Callable[[str], None]) -> list[str]:
    graphs = datagen.small_graphs(4, 3, 5, 300, 33) if ctx.quick else datagen.case_data("small")
    requests = [{**g, "config": {"validate_r2": False, "cache": False, "seed": 1000 + i}}
                for i, g in enumerate(graphs)]
    results: dict[str, list[Any]] = {"pool": [], "cluster": []}

    def batch(name: str, pool: WorkerPool) -> float:
        items: list[Any] = []
        seconds = clock(lambda: items.extend(pool.fit_many(requests)))
        if not all(item.ok for item in items):
            failed = [repr(item.error) for item in items if not item.ok]
            raise RuntimeError(f"{name}: {len(failed)} fits failed: {failed[:3]}")
        results[name].append([(i.result.scm, i.result.validation) for i in items])
        return seconds

    with (tempfile.TemporaryDirectory(prefix="scm-cluster-bench-") as tmp,
          LoopbackCluster(ctx.python, Path(tmp)) as cluster,
          WorkerPool(2, python=ctx.python, worker_args=("--no-store",), start_timeout=600) as pool,
          WorkerPool(scheduler=cluster.address, python=ctx.python, worker_args=("--no-store",),
                     start_timeout=600) as gateway):
        for workers in (pool, gateway):
            workers.start()
            for worker in workers.workers:
                worker.wait_until_warm(600)
        log(f"cluster {cluster.address} up")
        times = paired(ctx.rounds, {"pool": lambda _i: batch("pool", pool),
                                    "cluster": lambda _i: batch("cluster", gateway)})
    same = results["pool"] == results["cluster"]
    measure = f"{len(graphs)} small graphs: 2×1 Dask cluster vs WorkerPool(2)"
    return [*TABLE, row(measure, times["pool"], times["cluster"], None), "",
            "Every fit's model and validation the same on the cluster as on the pool: "
            f"{'yes' if same else 'NO'}."]
