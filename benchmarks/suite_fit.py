"""Suite fit → FIT.md: fit time against DoWhy GOOD in-process, FAST, incremental refits, quality.

Rows, each judged by rounds.judge on paired rounds (baseline and worker back to back, the
order alternating; round i fits with seed 100 + i, the same seed on both sides, so the
same split):

- the 100-node DAG (datagen.DAG): DoWhy's pipeline (dowhy_side ``fit``, GOOD) against the
  worker's fit (cache off), GOOD (target ≤ 0.33×, issue 17) and ``quality: "FAST"``
  (target ≤ 0.1×, moonshot 0.05×, issue 34); held-out mean R² of GOOD against DoWhy's;
- the 40 small graphs: sequential DoWhy GOOD against ``WorkerPool(2).fit_many``, GOOD
  (target ≥ 3× the throughput, i.e. ≤ 0.33× the time) and FAST (≥ 10×, ≤ 0.1×);
- incremental refit on the 100-node DAG: a full fit (cache off) of the DAG with one added
  edge against the same request after a cached fit of the original (target ≤ 0.1×,
  moonshot 0.02×), the nodes it reused; one changed column: how many nodes were refit;
- the fit cache on the chain: an identical request answered from the cache (≤ 0.05×);
- the quality table and plot (fit_quality.py).

A worker that rejects FAST (-32602) or reports no ``metadata.reused_nodes`` gets its rows
"not available", not a crash.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import datagen
import fit_quality
from dowhy_side import DoWhySide
from rounds import TABLE, Target, clock, paired, row
from scm_client import Worker, WorkerPool
from scm_client.errors import RemoteError

TITLE = "Fit: the worker against DoWhy in-process, FAST, incremental refits, quality"
NO_CHECK = {"validate_r2": False}  # report R², never fail a timed fit on it


def dag(quick: bool) -> dict[str, Any]:
    return datagen.random_dag(8, 0.3, 300, 22) if quick else datagen.case_data("dag")


def small(quick: bool) -> list[dict[str, Any]]:
    return datagen.small_graphs(4, 3, 5, 300, 33) if quick else datagen.case_data("small")


def fit(worker: Worker, request: dict[str, Any], **config: Any) -> Any:
    return worker.fit(request["graph"], request["traces"], **NO_CHECK, **config)


def offers(worker: Worker, request: dict[str, Any], **config: Any) -> str | None:
    """None if the worker takes ``config``; else why not (its error), for a "not available" row."""
    try:
        fit(worker, request, cache=False, seed=0, **config)
    except RemoteError as error:
        return f"{type(error).__name__}: {error}"
    return None


def not_available(measure: str, why: str) -> str:
    return f"| {measure} | — | not available ({why}) | — | — | not available |"


def big_dag(ctx: Any, side: DoWhySide, worker: Worker, log: Callable[[str], None]) -> list[str]:
    request = dag(ctx.quick)
    fast_missing = offers(worker, request, quality="FAST")
    r2: dict[str, list[float]] = {"dowhy": [], "good": []}

    def dowhy(i: int) -> float:
        found = side.call("fit", request=request, seed=100 + i)
        r2["dowhy"].append(found["mean_r2"])
        return float(found["seconds"])

    def good(i: int) -> float:
        result: list[Any] = []
        seconds = clock(lambda: result.append(fit(worker, request, seed=100 + i, cache=False)))
        r2["good"].append(result[0].mean_r2)
        return seconds

    sides = {"dowhy": dowhy, "good": good}
    if fast_missing is None:
        sides["fast"] = lambda i: clock(lambda: fit(worker, request, seed=100 + i, cache=False,
                                                    quality="FAST"))
    times = paired(ctx.rounds, sides)
    log(f"100-node DAG: DoWhy {times['dowhy']}, worker {times['good']}")
    label = f"{len(request['graph']['nodes'])}-node DAG, {len(request['graph']['edges'])} edges"
    delta = max(abs(a - b) for a, b in zip(r2["good"], r2["dowhy"], strict=True))
    fast = f"{label}: fit FAST vs DoWhy GOOD (moonshot 0.05×)"
    rows = [row(f"{label}: fit GOOD vs DoWhy GOOD", times["dowhy"], times["good"], Target(0.33)),
            row(fast, times["dowhy"], times["fast"], Target(0.1))
            if fast_missing is None else not_available(fast, fast_missing)]
    return [*rows, "", "Held-out mean R², worker GOOD against DoWhy GOOD on the same split: "
            f"worst |Δ| {delta:.4f} (target ≤ 0.01)."]


def batch(ctx: Any, side: DoWhySide, log: Callable[[str], None]) -> list[str]:
    graphs = small(ctx.quick)

    def requests(quality: str) -> list[dict[str, Any]]:
        return [{**g, "config": {**NO_CHECK, "seed": 1000 + i, "cache": False, "quality": quality}}
                for i, g in enumerate(graphs)]

    with WorkerPool(2, python=ctx.python, worker_args=("--no-store",), start_timeout=600) as pool:
        pool.start()
        fast = pool.fit_many(requests("FAST")[:1])[0]
        sides = {"dowhy": lambda _i: float(side.call("batch", requests=graphs,
                                                     seed_base=1000)["seconds"]),
                 "good": lambda _i: clock(lambda: pool.fit_many(requests("GOOD")))}
        if fast.ok:
            sides["fast"] = lambda _i: clock(lambda: pool.fit_many(requests("FAST")))
        times = paired(ctx.rounds, sides)
    log(f"batch: DoWhy {times['dowhy']}, pool {times['good']}")
    label = (f"{len(graphs)} small graphs, WorkerPool(2) vs sequential DoWhy GOOD "
             "(time; ≥ 3× / ≥ 10× throughput)")
    return [row(f"{label}: GOOD", times["dowhy"], times["good"], Target(0.33)),
            row(f"{label}: FAST", times["dowhy"], times["fast"], Target(0.1))
            if fast.ok else not_available(f"{label}: FAST", str(fast.error))]


def with_edge(request: dict[str, Any]) -> dict[str, Any]:
    """The request with one edge it lacks, from an early node to a late one (still a DAG)."""
    nodes, edges = request["graph"]["nodes"], request["graph"]["edges"]
    new = next([a, b] for a in nodes[len(nodes) // 10:] for b in reversed(nodes)
               if [a, b] not in edges)
    return {**request, "graph": {"nodes": nodes, "edges": [*edges, new]}}


def with_changed_column(request: dict[str, Any]) -> tuple[dict[str, Any], str, set[str]]:
    """The request with one column changed: a non-root node with the most children (roots
    have no mechanism to refit); the node, and the nodes that must be refit (it, its children)."""
    edges = request["graph"]["edges"]
    children = {a: {b for x, b in edges if x == a} for a, _ in edges}
    node = max((b for _, b in edges if b in children), key=lambda n: len(children[n]),
               default=edges[-1][1])
    traces = {**request["traces"], node: [v * 1.1 + 0.05 for v in request["traces"][node]]}
    return {**request, "traces": traces}, node, {node} | children.get(node, set())


def incremental(ctx: Any, worker: Worker, log: Callable[[str], None]) -> list[str]:
    request = dag(ctx.quick)
    edged = with_edge(request)
    fit(worker, request, seed=99)
    probe = fit(worker, edged, seed=99)
    nodes = len({child for _, child in request["graph"]["edges"]})  # the fitted ones: non-roots
    measure = (f"{len(request['graph']['nodes'])}-node DAG + one edge after a cached fit vs a "
               "full fit (cache off) (moonshot 0.02×)")
    if "reused_nodes" not in probe.metadata:
        return [not_available(measure, "no metadata.reused_nodes in the fit result")]
    reused: list[int] = []

    def refit(i: int) -> float:  # seeds apart from the full fits': nothing of theirs reused
        fit(worker, request, seed=300 + i)  # the cached original, untimed
        result: list[Any] = []
        seconds = clock(lambda: result.append(fit(worker, edged, seed=300 + i)))
        reused.append(len(result[0].metadata["reused_nodes"]))
        return seconds

    times = paired(ctx.rounds, {
        "full": lambda i: clock(lambda: fit(worker, edged, seed=400 + i, cache=False)),
        "incremental": refit})
    changed, node, expected = with_changed_column(request)
    fitted = {child for _, child in request["graph"]["edges"]}
    refit = fitted - set(fit(worker, changed, seed=99).metadata["reused_nodes"])
    log(f"incremental: {times}; changed {node}: refit {sorted(refit)}")
    return [row(f"{measure}; reused {statistics.median(reused):g} of {nodes} non-root nodes",
                times["full"], times["incremental"], Target(0.1)),
            f"| one changed column ({node}) after a cached fit: non-root nodes refit | — "
            f"| {len(refit)} | — | {len(expected)} (the node and its children) "
            f"| {ctx.verdict(refit == expected)} |"]


def cache(ctx: Any, worker: Worker) -> list[str]:
    request = datagen.chain(300 if ctx.quick else 1000, 11)
    fit(worker, request, seed=7)
    times = paired(ctx.rounds, {
        "fit": lambda _i: clock(lambda: fit(worker, request, seed=7, cache=False)),
        "hit": lambda _i: clock(lambda: fit(worker, request, seed=7))})
    return [row("chain: identical request from the fit cache vs fitted (≥ 20× faster)",
                times["fit"], times["hit"], Target(0.05))]


def run(ctx: Any, log: Callable[[str], None]) -> list[str]:
    with DoWhySide(ctx.python) as side, ctx.worker() as worker:
        log(f"DoWhy {side.hello['dowhy']} in-process beside the worker")
        speed = big_dag(ctx, side, worker, log) + batch(ctx, side, log)
        refits = incremental(ctx, worker, log) + cache(ctx, worker)
        quality, png = fit_quality.measure(ctx, side, worker, log)
    speed_rows = [line for line in speed if line.startswith("|")]
    notes = [line for line in speed if line and not line.startswith("|")]
    return ["## Speed", "", *TABLE, *speed_rows, *refits, "", *notes,
            f"Baseline: DoWhy {side.hello['dowhy']} (Python {side.hello['python']}) in one warm "
            f"process; {ctx.rounds} paired rounds per row; round i fits with seed 100 + i.",
            "", *quality, "", f"![fit time against held-out R²]({png})"]
