"""WorkerPool end to end: input order, per-item errors, a worker killed mid-batch, thread budget."""

from __future__ import annotations

import os
import random
import signal
import threading
from typing import Any

import pytest

from scm_client import BatchItem, InvalidParams, WorkerPool


def small_request(seed: int, rows: int = 300) -> dict[str, Any]:
    """A random 3–6 node DAG with linear-Gaussian traces; node names carry the seed."""
    rng = random.Random(seed)
    nodes = [f"g{seed}_n{j}" for j in range(rng.randint(3, 6))]
    edges = [[nodes[a], nodes[b]] for a in range(len(nodes)) for b in range(a + 1, len(nodes)) if rng.random() < 0.5]
    columns: dict[str, list[float]] = {}
    for node in nodes:
        parents = [a for a, b in edges if b == node]
        columns[node] = [sum(1.5 * columns[p][r] for p in parents) + rng.gauss(0, 1) for r in range(rows)]
    return {"graph": {"nodes": nodes, "edges": edges}, "traces": columns,
            "config": {"seed": seed, "validate_r2": False, "cache": False}}


@pytest.fixture
def pool() -> WorkerPool:
    with WorkerPool(2, worker_args=("--no-store",)) as pool:
        pool.start()
        yield pool


def test_results_come_back_in_input_order_with_one_bad_item(pool: WorkerPool) -> None:
    requests = [small_request(i) for i in range(8)]
    requests.insert(3, {"graph": {"nodes": ["a"], "edges": [["a", "a"]]}, "traces": {"a": [1.0]}})
    seen: list[tuple[int, int]] = []
    items = pool.fit_many(requests, on_progress=lambda done, total, item: seen.append((done, total)))
    assert [item.index for item in items] == list(range(9))
    assert isinstance(items[3].error, InvalidParams) and items[3].result is None
    for item, request in zip(items, requests, strict=True):
        if item.index != 3:
            assert item.ok and item.result is not None
            assert item.result.scm["graph"]["nodes"] == request["graph"]["nodes"]
    assert sorted(seen) == [(i, 9) for i in range(1, 10)]


def test_worker_killed_mid_batch_is_replaced_and_nothing_is_lost(pool: WorkerPool) -> None:
    requests = [small_request(100 + i, rows=800) for i in range(12)]
    victim = pool.workers[0]
    first_done = threading.Event()

    def on_progress(done: int, total: int, item: BatchItem) -> None:
        first_done.set()

    killer = threading.Thread(target=lambda: first_done.wait(60) and os.kill(victim.pid, signal.SIGKILL))
    killer.start()
    items = pool.fit_many(requests, on_progress=on_progress)
    killer.join()
    assert all(item.ok for item in items), [repr(item.error) for item in items if not item.ok]
    assert victim.starts == 2
    assert [item.index for item in items] == list(range(12))


def test_pool_budgets_one_thread_per_worker_on_two_cores(pool: WorkerPool) -> None:
    cores = os.cpu_count() or 1
    assert pool.threads == max(1, cores // 2)
    assert all(worker.info["threads"] == pool.threads for worker in pool.workers)
