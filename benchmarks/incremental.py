"""Incremental refits on the benchmark's 100-node DAG: what a variation of a fitted request costs.

``incremental_rows(python)`` fits the DAG (datagen, seed 101) on a warm worker, then the
same request plus one edge, then the same request with one column changed, each seeded
alike; a fresh worker fits each variation in full, the baseline and the check that the
incremental result equals it value for value (mechanisms, candidates, held-out scores).
Runnable alone: ``python benchmarks/incremental.py --worker-python .venv-worker/bin/python``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Any

import datagen
from scm_client import Worker

DAG = {**datagen.DAG, "seed": 101}
FIT_SEED = 7


def incremental_rows(python: str) -> list[dict[str, Any]]:
    """Rows ``{"case", "full_s", "incremental_s", "ratio", "target", "moonshot", "refitted",
    "reused", "same_as_full"}``: one for an added edge, one for a changed column."""
    base = datagen.random_dag(**DAG)
    variations = {"one added edge": with_edge(base), "one changed column": with_changed(base)}
    incremental, fresh = started(python), started(python)
    try:
        fit(incremental, base)
        rows = []
        for case, (variation, expected) in variations.items():
            incremental_s, grown = timed_fit(incremental, variation)
            full_s, full = timed_fit(fresh, variation, cache=False)
            rows.append(row(case, full_s, incremental_s, grown, full, expected))
        return rows
    finally:
        incremental.close()
        fresh.close()


def row(case: str, full_s: float, incremental_s: float, grown: dict[str, Any],
        full: dict[str, Any], expected: list[str]) -> dict[str, Any]:
    non_roots = set(grown["metadata"]["node_fit_ms"])
    refitted = sorted(non_roots - set(grown["metadata"]["reused_nodes"]))
    same = all(grown[part] == full[part] for part in ("scm", "validation", "warnings"))
    return {"case": case, "full_s": full_s, "incremental_s": incremental_s,
            "ratio": incremental_s / full_s, "target": 0.1, "moonshot": 0.02,
            "refitted": refitted, "expected_refitted": expected,
            "reused": len(grown["metadata"]["reused_nodes"]), "same_as_full": same}


def started(python: str) -> Worker:
    worker = Worker(python=python, worker_args=("--no-store",))
    worker.start()
    while not worker.call("initialize", {"client": "bench", "protocol_version": 1})["warm"]:
        time.sleep(0.05)  # the handshake has no wait: poll the warm-up
    return worker


def fit(worker: Worker, request: dict[str, Any], **config: Any) -> dict[str, Any]:
    params = {**request, "config": {"seed": FIT_SEED, "validate_r2": False, **config}}
    result: dict[str, Any] = worker.call("fit", params, timeout=3600)
    return result


def timed_fit(worker: Worker, request: dict[str, Any], **config: Any) -> tuple[float, Any]:
    started_at = time.perf_counter()
    result = fit(worker, request, **config)
    return time.perf_counter() - started_at, result


def with_edge(base: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The DAG plus one edge into its last node, from the first node not yet its parent."""
    made = copy.deepcopy(base)
    nodes, edges = made["graph"]["nodes"], made["graph"]["edges"]
    target = nodes[-1]
    source = next(n for n in nodes[:-1] if [n, target] not in edges)
    edges.append([source, target])
    return made, [target]


def with_changed(base: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The DAG with one non-root column (one that has children) shifted on every third row."""
    made = copy.deepcopy(base)
    edges = made["graph"]["edges"]
    targets = [n for n in made["graph"]["nodes"] if any(e[1] == n for e in edges)]
    node = next(n for n in targets if any(e[0] == n for e in edges))
    column = made["traces"][node]
    made["traces"][node] = [v + 0.1 * (i % 3 == 0) for i, v in enumerate(column)]
    return made, sorted({node} | {e[1] for e in edges if e[0] == node})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-python", default=".venv-worker/bin/python")
    print(json.dumps(incremental_rows(parser.parse_args().worker_python), indent=2))


if __name__ == "__main__":
    main()
