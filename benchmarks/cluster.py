"""The 40-graph batch on a Dask cluster vs the local WorkerPool vs sequential in-process DoWhy.

    .venv-client/bin/python benchmarks/cluster.py [--worker-python .venv-worker/bin/python] [--rounds N] [--out PATH]

Run by the CLIENT interpreter (Python 3.13, scm_client). The cluster is real processes on
127.0.0.1, started from the worker interpreter: ``dask scheduler`` and two ``dask worker
--nthreads 1 --preload scm_worker.cluster`` (2 workers × 1 thread, the machine's two
cores), driven through a gateway worker (``WorkerPool(scheduler=...)``). The local pool is
``WorkerPool(2)`` (1 thread per worker on 2 cores). The baseline is
``benchmarks/inprocess.py sequential``: DoWhy's own pipeline on every graph, one after
another, in one warm process (DoWhy defaults, ``n_jobs=-1``). Everything is timed warm:
workers, Dask workers (their preload pays the warm-up) and the baseline's process have
fitted once before the clock runs; the cluster's time includes the gateway importing
``distributed`` and connecting to the scheduler, as every ``scm batch --scheduler`` does.

The data set is datagen's ``small`` (40 DAGs of 3–8 nodes, 500 rows), seeds 1000 + i as
in benchmarks/run.py case 3. The machine may be shared and noisy, so each round
(``--rounds``) measures all three in turn (sequential, pool, cluster) and the median of
the rounds is reported, the load average with it.
Writes ``benchmarks/CLUSTER.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import datagen
import provenance
from machine import cpu_model, load_average
from scm_client import BatchItem, WorkerPool

T0 = time.perf_counter()


def progress(message: str) -> None:
    print(
        f"[cluster-bench {time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True
    )


class LoopbackCluster:
    """``dask scheduler`` + N ``dask worker --nthreads 1 --preload scm_worker.cluster`` on 127.0.0.1."""

    def __init__(self, python: str, directory: Path, n_workers: int) -> None:
        self.python = python
        self.directory = directory
        self.n_workers = n_workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def spawn(self, name: str, *argv: str) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                [self.python, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.directory,
            )
        )

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        started = time.perf_counter()
        scheduler_file = self.directory / "scheduler.json"
        self.spawn(
            "scheduler",
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        while not scheduler_file.exists():
            if self.procs[0].poll() is not None:
                raise RuntimeError(
                    "the Dask scheduler exited; see " + str(self.directory / "scheduler.log")
                )
            time.sleep(0.2)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(self.n_workers):
            self.spawn(
                f"worker{i}",
                "-m",
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--preload",
                "scm_worker.cluster",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{i}",
                "--local-directory",
                str(self.directory / "dask"),
            )
        wait = (
            "import sys; from distributed import Client; c = Client(sys.argv[1], timeout='30s'); "
            "c.wait_for_workers(int(sys.argv[2]), timeout=600); c.close()"
        )
        subprocess.run(
            [self.python, "-c", wait, self.address, str(self.n_workers)],
            check=True,
            capture_output=True,
        )
        self.start_s = time.perf_counter() - started

    def __exit__(self, *exc_info: object) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def sequential_baseline(python: str, tmp: Path, checksum: str) -> dict[str, Any]:
    out = tmp / "sequential.json"
    subprocess.run(
        [
            python,
            str(BENCH / "inprocess.py"),
            "sequential",
            "--out",
            str(out),
            "--data",
            "small",
            "--seed-base",
            "1000",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    if result["checksum"] != checksum:
        raise RuntimeError("inprocess.py generated different data")
    return result


def timed_batch(pool: WorkerPool, requests: list[dict[str, Any]]) -> tuple[float, list[BatchItem]]:
    started = time.perf_counter()
    items = pool.fit_many(requests)
    seconds = time.perf_counter() - started
    failed = [repr(item.error) for item in items if not item.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} fits failed: {failed[:3]}")
    return seconds, items


def same_results(a: list[BatchItem], b: list[BatchItem]) -> bool:
    return all(
        x.result is not None
        and y.result is not None
        and x.result.scm == y.result.scm
        and x.result.validation == y.result.validation
        for x, y in zip(a, b, strict=True)
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--worker-python", default=os.environ.get("SCM_WORKER_PYTHON", ".venv-worker/bin/python")
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of sequential, pool and cluster (default 2)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "CLUSTER.md")
    args = parser.parse_args()
    measured = provenance.measured_at()  # before measuring: the code these figures describe
    python = str(Path(args.worker_python).absolute())
    graphs = datagen.case_data("small")
    checksum = datagen.checksum(graphs)
    requests = [
        {
            "graph": g["graph"],
            "traces": g["traces"],
            "config": {"validate_r2": False, "cache": False, "seed": 1000 + i},
        }
        for i, g in enumerate(graphs)
    ]
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="scm-cluster-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sequential_s: list[float] = []
        pool_s: list[float] = []
        cluster_s: list[float] = []
        with (
            LoopbackCluster(python, tmp, 2) as cluster,
            WorkerPool(2, python=python, worker_args=("--no-store",), start_timeout=600) as pool,
            WorkerPool(
                scheduler=cluster.address,
                python=python,
                worker_args=("--no-store",),
                start_timeout=600,
            ) as gateway,
        ):
            progress(
                f"cluster {cluster.address} up in {cluster.start_s:.1f} s (2 Dask workers, warm)"
            )
            for workers in (pool, gateway):
                workers.start()
                for worker in workers.workers:
                    worker.wait_until_warm()
            same = True
            for round_ in range(1, args.rounds + 1):
                loads.append(load_average())
                sequential = sequential_baseline(python, tmp, checksum)
                sequential_s.append(sequential["seconds"])
                progress(
                    f"round {round_}: sequential in-process DoWhy {sequential['seconds']:.1f} s"
                )
                seconds, local_items = timed_batch(pool, requests)
                pool_s.append(seconds)
                progress(f"round {round_}: WorkerPool(2) {seconds:.1f} s")
                seconds, cluster_items = timed_batch(gateway, requests)
                cluster_s.append(seconds)
                batch = gateway.last_batch or {}
                progress(
                    f"round {round_}: 2×1 Dask cluster {seconds:.1f} s "
                    f"(gateway-side {batch.get('seconds')} s, rescheduled {batch.get('rescheduled')})"
                )
                same = same and same_results(local_items, cluster_items)
            loads.append(load_average())
    write_report(
        args.out,
        measured,
        checksum,
        sequential_s,
        pool_s,
        cluster_s,
        same,
        cluster.start_s,
        loads,
        len(requests),
    )
    progress(f"wrote {args.out}")
    return 0


def write_report(
    out: Path,
    measured: provenance.Measured,
    checksum: str,
    sequential_s: list[float],
    pool_s: list[float],
    cluster_s: list[float],
    same: bool,
    cluster_start_s: float,
    loads: list[str],
    count: int,
) -> None:
    seq, pool, cluster = (statistics.median(s) for s in (sequential_s, pool_s, cluster_s))
    rows = [
        ("sequential in-process DoWhy (1 process, DoWhy defaults)", seq, sequential_s),
        ("local `WorkerPool(2)`, 1 thread per worker", pool, pool_s),
        ("Dask cluster, 2 workers × 1 thread, via `WorkerPool(scheduler=...)`", cluster, cluster_s),
    ]
    lines = [
        "# The 40-graph batch on a Dask cluster",
        "",
        provenance.stamp(measured),
        "",
        (
            f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `benchmarks/cluster.py` on this machine: "
            f"{os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()} client, "
            f"load average before/between/after rounds: {' → '.join(loads)} (the machine is shared: other jobs ran "
            "meanwhile)."
        ),
        "",
        (
            f"Data: datagen's `small` set, {count} DAGs of 3–8 nodes × 500 rows (checksum `{checksum}`), "
            "seeds 1000 + i, quality GOOD, as in RESULTS.md case 3."
        ),
        "",
        "| how | seconds | graphs/s | vs sequential | rounds |",
        "|---|---|---|---|---|",
    ]
    for name, seconds, each in rows:
        lines.append(
            f"| {name} | {seconds:.1f} | {count / seconds:.2f} | {seq / seconds:.2f}× | "
            f"{', '.join(f'{s:.1f}' for s in each)} |"
        )
    lines += [
        "",
        (
            f"- Cluster results equal the local pool's, seed for seed (mechanisms and validation of all {count} "
            f"graphs): **{'yes' if same else 'NO'}**."
        ),
        (
            f"- The cluster: `dask scheduler` and two `dask worker --nthreads 1 --preload scm_worker.cluster` on "
            f"127.0.0.1, up and warm in {cluster_start_s:.1f} s (the preload imports DoWhy and runs a tiny fit before "
            "the worker registers). Its time includes the gateway importing `distributed` and connecting to the "
            "scheduler, as each `scm batch --scheduler` run does; the scheduler and the gateway share the two cores "
            "with the Dask workers."
        ),
        (
            "- Each round ran the three in turn; the table gives the median of the rounds. Sequential in-process "
            "DoWhy is `inprocess.py sequential` (`gcm.auto.assign_causal_mechanisms` with DoWhy's defaults, in one warm "
            "process), the same baseline as RESULTS.md case 3. Other jobs on the machine hit it hardest (it spreads "
            "every model selection over all cores with joblib), so compare the pool and the cluster, measured back "
            "to back, with each other first."
        ),
        f"- {_cluster_vs_pool(pool, cluster)} The cluster is for when one machine is not enough: add "
        "`dask worker` processes on more nodes and the same batch spreads over them.",
        "",
    ]
    out.write_text("\n".join(lines))


def _cluster_vs_pool(pool: float, cluster: float) -> str:
    """The cluster against the pool, from this run's medians, and why they are close on one machine."""
    cores = os.cpu_count()
    than = "faster than" if cluster < pool else "slower than"
    return (
        f"On this {cores}-core machine the cluster took {cluster / pool:.2f}× the pool's time "
        f"({cluster:.1f} s against {pool:.1f} s, {abs(cluster - pool) / pool:.0%} {than} the pool): both run two "
        "single-threaded fits at a time on the same cores, so the cluster cannot gain here, and its scheduler "
        "and gateway share those cores."
    )


if __name__ == "__main__":
    sys.exit(main())
