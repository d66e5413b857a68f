"""Case 3: 40 small graphs, sequential in-process DoWhy against WorkerPool(2).fit_many."""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING, Any

from common import BATCH_TARGET, FIT_CONFIG, Row, _start_warm, fmt_s, fmt_x, progress, timed
from scm_client import WorkerPool

if TYPE_CHECKING:
    from bench import Bench


def many_small_graphs(bench: Bench) -> None:
    """Case 3: 40 small graphs, sequential in-process DoWhy vs WorkerPool(2).fit_many.

    The same pool with 2 threads per worker (a worker's default on 2 cores) runs only
    the first few graphs: it shows what oversubscription costs, which was once too much
    to run all 40 within the benchmark's time.
    """
    graphs = bench.data["small"]
    cores = os.cpu_count() or 1
    bench.case("3", f"case 3: {len(graphs)} small graphs, sequential in-process DoWhy")
    baseline = bench.helper("sequential", "--seed-base", "1000", data="small")
    requests = [
        {
            "graph": g["graph"],
            "traces": g["traces"],
            "config": {**FIT_CONFIG, "seed": 1000 + i, "cache": False},
        }
        for i, g in enumerate(graphs)
    ]
    pools: dict[str, Any] = {}
    variants = [("budgeted", None, len(requests))]
    if cores > 1:
        variants.append(("oversubscribed", cores, bench.args.oversubscribed_graphs))
    for label, threads, count in variants:
        with WorkerPool(
            2,
            python=bench.python,
            threads=threads,
            worker_args=("--no-store",),
            start_timeout=600,
        ) as pool:
            bench.case(
                f"3 pool {label}",
                f"case 3: WorkerPool(2) {label}, --threads {pool.threads} per worker, "
                f"{count} graphs",
            )
            start_s, _ = timed(lambda pool=pool: _start_warm(pool.workers, pool.start))
            seconds, items = timed(
                lambda pool=pool, count=count: pool.fit_many(requests[:count])
            )
            errors = [str(item.error) for item in items if not item.ok]
            r2 = [item.result.mean_r2 for item in items if item.ok and item.result is not None]
            pools[label] = {
                "threads": pool.threads,
                "graphs": count,
                "seconds": seconds,
                "start_s": start_s,
                "errors": errors,
                "per_graph_s": [
                    item.result.metadata.get("fitting_time_ms", 0) / 1000
                    for item in items
                    if item.result is not None
                ],
                "mean_r2": statistics.fmean(r for r in r2 if r is not None),
            }
            progress(f"  {label}: {fmt_s(seconds)} for {count} graphs ({len(errors)} errors)")
    per_graph = baseline["per_graph"]
    for label, pool in pools.items():
        count = pool["graphs"]
        base = baseline["seconds"] if count == len(graphs) else sum(per_graph[:count])
        ratio = base / pool["seconds"]
        budget = (
            f"2 processes × {pool['threads']} threads = {2 * pool['threads']} on {cores} cores"
        )
        targeted = label == "budgeted"
        subset = "" if count == len(graphs) else f", first {count} graphs only"
        bench.results.add(
            Row(
                "3 40 small graphs",
                f"throughput, WorkerPool(2) {budget}{subset}"
                + ("" if not pool["errors"] else f"; {len(pool['errors'])} errors"),
                f"{count / base:.2f} graphs/s ({fmt_s(base)})",
                f"{count / pool['seconds']:.2f} graphs/s ({fmt_s(pool['seconds'])})",
                f"{fmt_x(ratio)}",
                f"≥ {BATCH_TARGET:g}×" if targeted else "info (not a target)",
                (ratio >= BATCH_TARGET and not pool["errors"]) if targeted else None,
                ratio if targeted else None,
                BATCH_TARGET if targeted else None,
                "higher",
                "×",
            )
        )
    bench.details["case3"] = {
        "sequential_dowhy_s": baseline["seconds"],
        "sequential_per_graph_s": per_graph,
        "sequential_mean_r2": statistics.fmean(r for r in baseline["mean_r2"] if r is not None),
        "pools": pools,
        "nodes": [len(g["graph"]["nodes"]) for g in graphs],
    }
