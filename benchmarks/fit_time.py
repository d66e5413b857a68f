"""Where a fit's time goes outside its node tasks: dispatch, idle processes, pickles, the wire.

    .venv-client/bin/python benchmarks/fit_time.py --worker-python .venv-worker/bin/python \
        [--out benchmarks/FIT_TIME.md]

Issue 17 asks where the rest of the two missed fit targets' time goes: pool dispatch,
the order batch items are handed out, what each node task pickles. The worker reports
each non-root node's task time (``metadata.node_fit_ms``: selection, fit, held-out
prediction, refit) and how many processes ran the tasks (``fit_processes``). So a fit's
``fit_processes × fitting_time_ms`` splits into the node tasks themselves and everything
else (tasks waiting to be handed out, a process idle while the other finishes the last
node, the roots, scoring); the client's wall adds the wire.

On RESULTS.md's own data and seeds, side by side in this run:

- the 100-node DAG (seed 101) on a default worker (one loky process per core), and
  DoWhy's pipeline on it in a warm process (``inprocess.py dowhy-fit``);
- the 40 small graphs (seeds 1000–1039) on ``WorkerPool(2)`` (one process each, the
  largest first), and DoWhy's pipeline on each in turn (``inprocess.py sequential``);
  the same 40 on one lone ``--threads 1`` worker measure what a request costs beyond
  its fit, which the pool pays once per item.

Each of the two runs twice on the worker: as shipped, and with sklearn's own tree grower
(``SCM_LEAN_GROWER=0``, see ``scm_worker.fast.lean_grower``), which must give the same fits.

"If every process did nothing but node tasks" divides DoWhy's time by the node tasks'
seconds per process: the ratio the worker would reach if dispatch, idling, pickling
and the wire cost nothing. Where that bound misses a target, no scheduling can meet it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datagen
from common import (
    BATCH_TARGET,
    DAG_TARGET,
    FIT_CONFIG,
    _start_warm,
    add_worker_python,
    fmt_s,
    progress,
    run_inprocess,
)
from machine import Run, publish
from scm_client import Worker, WorkerPool
from scm_client.results import FitResult

DAG_SEED = 101
POOL_SIZE = 2  # WorkerPool(2): the batch target's pool
SMALL_SEED_BASE = 1000


@dataclass(frozen=True)
class Account:
    """Processes that were there for ``span_s``, and how much of that was node tasks."""

    processes: int
    span_s: float  # one fit's fitting_time_ms, or a pool's wall for the whole batch
    fitting_s: float  # fitting_time_ms, summed over the fits
    node_s: float  # node_fit_ms, summed over the fits' nodes

    @property
    def process_s(self) -> float:
        """The busy time there could have been."""
        return self.processes * self.span_s

    @property
    def node_share(self) -> float:
        return self.node_s / self.process_s

    @property
    def node_s_per_process(self) -> float:
        return self.node_s / self.processes


def account(fits: list[FitResult], processes: int, span_s: float | None = None) -> Account:
    """The fits' processes; ``span_s`` defaults to the one fit's own fitting time."""
    fitting = sum(f.metadata["fitting_time_ms"] for f in fits) / 1000
    node = sum(sum(f.metadata["node_fit_ms"].values()) for f in fits) / 1000
    return Account(processes, fitting if span_s is None else span_s, fitting, node)


def helper(python: str, command: str, data: str, *options: str) -> dict[str, Any]:
    """benchmarks/inprocess.py under the worker's interpreter: DoWhy's own pipeline, or pickles."""
    return run_inprocess(python, command, data, datagen.checksum(datagen.case_data(data)), *options)


def fit(worker: Worker, request: dict[str, Any], seed: int) -> tuple[float, FitResult]:
    started = time.perf_counter()
    result = worker.fit(request["graph"], request["traces"], seed=seed, cache=False, **FIT_CONFIG)
    return time.perf_counter() - started, result


#: a worker's environment with sklearn's own tree grower instead of scm_worker.fast.lean_grower
STOCK_GROWER = {"SCM_LEAN_GROWER": "0"}


def dag_case(python: str) -> dict[str, Any]:
    dag = datagen.case_data("dag")
    progress(f"100-node DAG, seed {DAG_SEED}: DoWhy in-process")
    dowhy = helper(python, "dowhy-fit", "dag", "--seeds", str(DAG_SEED))["runs"][0]["seconds"]
    progress("100-node DAG: a default worker")
    wall, result, pickled_model = dag_fit(python, dag, {})
    progress("100-node DAG: a default worker with sklearn's own tree grower")
    stock_wall, stock, _ = dag_fit(python, dag, STOCK_GROWER)
    tasks = helper(python, "task-bytes", "dag", "--seeds", str(DAG_SEED))
    return {"dowhy_s": dowhy, "fit": account([result], result.metadata["fit_processes"]),
            "wall_s": wall, "stock_wall_s": stock_wall, "same_fit": same_fit(result, stock),
            "tasks": len(tasks["bytes"]),
            "task_bytes": sum(tasks["bytes"]), "task_max_bytes": max(tasks["bytes"]),
            "task_pickle_s": tasks["seconds"], "model_bytes": pickled_model}


def dag_fit(python: str, dag: dict[str, Any], env: dict[str, str]) -> tuple[float, FitResult, int]:
    """The DAG's fit on a fresh default worker: wall at the client, result, pickled size."""
    with Worker(python, worker_args=("--no-store",), start_timeout=600, env=env) as worker:
        _start_warm([worker], worker.start)
        wall, result = fit(worker, dag, DAG_SEED)
        pickled = next(m["size_bytes"] for m in worker.models() if m["model_id"] == result.model_id)
    return wall, result, pickled


def same_fit(a: FitResult, b: FitResult) -> bool:
    """The same mechanisms, candidates' scores and held-out R²: the grower changed nothing."""
    return a.scm == b.scm and a.validation == b.validation


def small_case(python: str) -> dict[str, Any]:
    graphs = datagen.case_data("small")
    requests = [{"graph": g["graph"], "traces": g["traces"],
                 "config": {**FIT_CONFIG, "seed": SMALL_SEED_BASE + i, "cache": False}}
                for i, g in enumerate(graphs)]
    progress(f"{len(graphs)} small graphs: DoWhy in-process, one after another")
    dowhy = helper(python, "sequential", "small", "--seed-base", str(SMALL_SEED_BASE))["seconds"]
    progress(f"{len(graphs)} small graphs: WorkerPool(2)")
    pooled, wall, errors = pool_fit(python, requests, {})
    progress(f"{len(graphs)} small graphs: WorkerPool(2) with sklearn's own tree grower")
    stock, stock_wall, stock_errors = pool_fit(python, requests, STOCK_GROWER)
    progress(f"{len(graphs)} small graphs: one --threads 1 worker, one request at a time")
    with Worker(python, worker_args=("--no-store", "--threads", "1"), start_timeout=600) as lone:
        _start_warm([lone], lone.start)
        runs = [fit(lone, r, r["config"]["seed"]) for r in requests]
    beyond = [wall_s - r.metadata["fitting_time_ms"] / 1000 for wall_s, r in runs]
    return {"dowhy_s": dowhy, "pool": account(pooled, POOL_SIZE, wall),
            "stock_wall_s": stock_wall,
            "same_fits": len(pooled) == len(stock) and all(map(same_fit, pooled, stock)),
            "graphs": len(graphs), "errors": errors + stock_errors,
            "per_request_s": sum(beyond) / len(beyond), "max_request_s": max(beyond)}


def pool_fit(
    python: str, requests: list[dict[str, Any]], env: dict[str, str]
) -> tuple[list[FitResult], float, int]:
    """The batch on a fresh WorkerPool(2): the results in input order, the wall, errors."""
    with WorkerPool(POOL_SIZE, python=python, worker_args=("--no-store",), start_timeout=600,
                    env=env) as pool:
        _start_warm(pool.workers, pool.start)
        started = time.perf_counter()
        items = pool.fit_many(requests)
        wall = time.perf_counter() - started
    pooled = [item.result for item in items if item.result is not None]
    return pooled, wall, len(items) - len(pooled)


def pct(share: float) -> str:
    return f"{share:.1%}"


def table(dag: dict[str, Any], small: dict[str, Any]) -> list[str]:
    f, p = dag["fit"], small["pool"]
    wire = dag["wall_s"] - f.fitting_s
    outside = p.process_s - p.fitting_s
    rows = [
        ("DoWhy in-process", fmt_s(dag["dowhy_s"]),
         f"{fmt_s(small['dowhy_s'])} for {small['graphs']} graphs"),
        ("the worker, wall at the client",
         (f"{fmt_s(dag['wall_s'])}: **{dag['wall_s'] / dag['dowhy_s']:.2f}×** DoWhy's time "
         f"(target ≤ {DAG_TARGET}×)"),
         (f"{fmt_s(p.span_s)}: **{small['dowhy_s'] / p.span_s:.2f}×** DoWhy's throughput "
         f"(target ≥ {BATCH_TARGET:g}×)")),
        ("the same with sklearn's own tree grower (SCM_LEAN_GROWER=0)",
         (f"{fmt_s(dag['stock_wall_s'])}: {dag['stock_wall_s'] / dag['dowhy_s']:.2f}× DoWhy's "
          f"time; the same fit: {'yes' if dag['same_fit'] else '**no**'}"),
         (f"{fmt_s(small['stock_wall_s'])}: {small['dowhy_s'] / small['stock_wall_s']:.2f}× "
          f"DoWhy's throughput; the same fits: {'yes' if small['same_fits'] else '**no**'}")),
        ("beyond the fits: the wire, requests, idle workers",
         f"{fmt_s(wire)} = {pct(wire / dag['wall_s'])} (wall − fitting_time_ms)",
         (f"{fmt_s(outside)} = {pct(outside / p.process_s)} of the workers' time; a request "
         f"beyond its fit costs {fmt_s(small['per_request_s'])} on a lone worker (at most "
         f"{fmt_s(small['max_request_s'])}), the rest is a worker idle at the end")),
        ("processes × time", f"{f.processes} × {fmt_s(f.span_s)} fitting",
         f"{p.processes} workers × 1 process × {fmt_s(p.span_s)}"),
        ("node tasks (sum of node_fit_ms)", f"{fmt_s(f.node_s)} = {pct(f.node_share)}",
         f"{fmt_s(p.node_s)} = {pct(p.node_share)}"),
        ("everything else in those processes",
         (f"{fmt_s(f.process_s - f.node_s)} = {pct(1 - f.node_share)}: handing out "
         f"{dag['tasks']} tasks, a process idle at the end, the roots, scoring"),
         (f"{fmt_s(p.process_s - p.node_s)} = {pct(1 - p.node_share)}: the above, and the "
         "roots, scoring and storing of each fit")),
        ("what the node tasks pickle",
         (f"{dag['tasks']} tasks, {dag['task_bytes'] / 1e6:.1f} MB in (largest "
         f"{dag['task_max_bytes'] / 1e3:.0f} kB; pickled and unpickled in "
         f"{fmt_s(dag['task_pickle_s'])}); the fitted model back, "
         f"{dag['model_bytes'] / 1e6:.1f} MB pickled"),
         "nothing: a --threads 1 worker fits its nodes in its own process"),
        ("if every process did nothing but node tasks",
         (f"{fmt_s(f.node_s_per_process)}: **{f.node_s_per_process / dag['dowhy_s']:.2f}×** "
         "DoWhy's time"),
         (f"{fmt_s(p.node_s_per_process)}: **{small['dowhy_s'] / p.node_s_per_process:.2f}×** "
         "DoWhy's throughput")),
    ]
    return ["| | 100-node DAG, seed 101 | 40 small graphs |", "|---|---|---|",
            *(f"| {name} | {a} | {b} |" for name, a, b in rows)]


def verdict(dag: dict[str, Any], small: dict[str, Any]) -> str:
    """What the table says about the targets: met, within reach of better scheduling, or
    out of its reach."""
    f, p = dag["fit"], small["pool"]
    ratios = {"the 100-node target": (dag["wall_s"] / dag["dowhy_s"] <= DAG_TARGET,
                                      f.node_s_per_process / dag["dowhy_s"] <= DAG_TARGET),
              "the batch target": (small["dowhy_s"] / p.span_s >= BATCH_TARGET,
                                   small["dowhy_s"] / p.node_s_per_process >= BATCH_TARGET)}
    met = [name for name, (now, _) in ratios.items() if now]
    reach = [name for name, (now, bound) in ratios.items() if bound and not now]
    out = [name for name, (_, bound) in ratios.items() if not bound]
    said = [f"Everything outside the node tasks (dispatch, idle processes, pickles, the wire) "
            f"took {pct(1 - f.node_s / (f.processes * dag['wall_s']))} of the 100-node fit's "
            f"processes and {pct(1 - p.node_share)} of the batch's."]
    if met:
        said.append(f"This run meets {' and '.join(met)}.")
    if reach:
        said.append(f"Cutting it would meet {' and '.join(reach)}.")
    if out:
        said.append(f"With all of it at zero, {' and '.join(out)} would still be missed: what "
                    "remains is the node tasks' own work, almost all model selection "
                    "(benchmarks/SELECTION.md).")
    return " ".join(said)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_worker_python(parser)
    parser.add_argument("--out", type=Path, default=HERE / "FIT_TIME.md")
    args = parser.parse_args(argv)
    run = Run.begin()
    dag = dag_case(args.worker_python)
    small = small_case(args.worker_python)
    publish(args.out, [
        *run.header("Where the fit targets' time goes", ".venv-client/bin/python "
                    "benchmarks/fit_time.py --worker-python .venv-worker/bin/python"),
        "- one run of each; the method is in benchmarks/fit_time.py's docstring",
        f"- batch errors: {small['errors']}",
        "",
        *table(dag, small),
        "",
        verdict(dag, small),
        "",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
