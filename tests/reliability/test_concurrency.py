"""8 threads x 200 mixed calls through one Worker, and through a WorkerPool: every reply
reaches its own caller, none is lost, none duplicated.

Every call's correct answer is unique to that call — a sample's seed and size, an
invalid count quoted back in the error's reason, a method name echoed by -32601, a
message carried by -32603, a sleep's seconds — so a reply delivered to the wrong
caller cannot pass. A duplicated reply would reach the client as a reply for no pending
request, which the client logs; the test collects those log records and requires none.
tests/e2e/test_lifecycle.py::test_eight_threads_sharing_one_worker_each_get_their_own_replies
does 8 x 50 pings/sleeps/prints; this adds real model calls and every kind of error.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from reliability_support import CHAIN_GRAPH, StrayReplies, chain_traces, join_all
from scm_client import InternalError, InvalidParams, MethodNotFound, Worker, WorkerPool
from support.worker_env import FAST_ARGS

THREADS, CALLS = 8, 200


def one_call(worker: Worker, model_id: str, t: int, i: int) -> str | None:
    """Make call number ``i`` of thread ``t``; None if its answer is its own, else what went wrong."""
    k = t * 10_000 + i
    kind = k % 6
    try:
        if kind == 0:
            seconds = k / 1e7
            got = worker.call("debug.sleep", {"seconds": seconds}, timeout=120)
            return None if got == seconds else f"sleep {seconds} got {got!r}"
        if kind == 1:
            n = 1 + k % 97
            drawn = worker.sample(model_id, num_samples=n, seed=k, return_samples=False, timeout=120)
            meta = drawn.metadata
            ok = meta["seed"] == k and meta["num_samples"] == n and drawn.statistics["X"]["count"] == n
            return None if ok and meta["model_id"] == model_id else f"sample seed {k} n {n} got {meta}"
        if kind == 2:
            try:
                worker.call("sample", {"model_id": model_id, "num_samples": -k}, timeout=120)
            except InvalidParams as exc:
                return None if exc.field == "num_samples" and f"got {-k}" in (exc.reason or "") else f"-{k}: {exc}"
            return f"sample num_samples=-{k} succeeded"
        if kind == 3:
            try:
                worker.call(f"no.such.method.{k}", timeout=120)
            except MethodNotFound as exc:
                return None if exc.data == f"no.such.method.{k}" else f"method {k}: {exc.data!r}"
            return f"no.such.method.{k} succeeded"
        if kind == 4:
            try:
                worker.call("debug.raise", {"message": f"boom-{k}"}, timeout=120)
            except InternalError as exc:
                return None if exc.message.endswith(f"boom-{k}") else f"raise {k}: {exc.message!r}"
            return f"debug.raise {k} succeeded"
        pid = worker.call("initialize", timeout=120)["pid"]
        return None if pid == worker.pid else f"initialize pid {pid} != {worker.pid}"
    except Exception as exc:  # noqa: BLE001 - any exception is a wrong answer here
        return f"call {kind} of thread {t}: {exc!r}"


def hammer(pick: Callable[[int, int], tuple[Worker, str]]) -> tuple[list[str], list[int]]:
    """THREADS threads x CALLS calls; ``pick(t, i)`` chooses the worker and model for a call."""
    barrier = threading.Barrier(THREADS)
    wrong: list[str] = []
    done = [0] * THREADS

    def run(t: int) -> None:
        barrier.wait()
        for i in range(CALLS):
            worker, model_id = pick(t, i)
            problem = one_call(worker, model_id, t, i)
            if problem is not None:
                wrong.append(problem)
            done[t] += 1

    threads = [threading.Thread(target=run, args=(t,), daemon=True, name=f"hammer-{t}") for t in range(THREADS)]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=600)
    return wrong, done


def test_eight_threads_by_200_mixed_calls_through_one_worker(make_worker: Callable[..., Worker],
                                                             stray_replies: StrayReplies) -> None:
    worker = make_worker()
    model_id = worker.fit(CHAIN_GRAPH, chain_traces(1), seed=1).model_id
    wrong, done = hammer(lambda t, i: (worker, model_id))
    assert wrong == []
    assert done == [CALLS] * THREADS
    assert stray_replies.records == []
    assert worker.starts == 1
    channel = worker._channel
    assert channel is not None and channel._pending == {}


def small_request(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    nodes = [f"g{seed}_n{j}" for j in range(3)]
    xs = [rng.gauss(0, 1) for _ in range(200)]
    ys = [2 * x + rng.gauss(0, 0.1) for x in xs]
    columns = {nodes[0]: xs, nodes[1]: ys, nodes[2]: [y - x + rng.gauss(0, 0.1) for x, y in zip(xs, ys, strict=True)]}
    return {"graph": {"nodes": nodes, "edges": [[nodes[0], nodes[1]], [nodes[1], nodes[2]]]},
            "traces": columns, "config": {"seed": seed, "cache": False}}


def test_a_worker_pool_under_the_same_load_plus_a_batch(stray_replies: StrayReplies, python311: str) -> None:
    with WorkerPool(2, python=python311, worker_args=FAST_ARGS, start_timeout=120) as pool:
        pool.start()
        models = [w.fit(CHAIN_GRAPH, chain_traces(s), seed=s).model_id for s, w in enumerate(pool.workers)]
        requests = [small_request(100 + i) for i in range(8)]
        batch: list[Any] = []
        batch_thread = threading.Thread(target=lambda: batch.extend(pool.fit_many(requests)), daemon=True)
        batch_thread.start()
        wrong, done = hammer(lambda t, i: (pool.workers[(t + i) % 2], models[(t + i) % 2]))
        join_all([batch_thread], timeout=600)
        assert wrong == []
        assert done == [CALLS] * THREADS
        assert [item.index for item in batch] == list(range(len(requests)))
        for item, request in zip(batch, requests, strict=True):
            assert item.ok, item.error
            assert item.result is not None and item.result.scm["graph"]["nodes"] == request["graph"]["nodes"]
        assert stray_replies.records == []
        assert [w.starts for w in pool.workers] == [1, 1]
