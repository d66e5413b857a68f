"""Progress goes to its own call: per-call ``on_progress`` on one shared, real Worker.

The worker tags every ``progress`` notification with the ``request_id`` it is about; the
client's Channel routes it to the callback that call brought, never to another thread's.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

from scm_client import Worker


def chain_request(prefix: str, length: int, rows: int = 200, seed: int = 0) -> dict[str, Any]:
    """A linear chain prefix0 → prefix1 → … with its own node names, so progress is attributable."""
    rng = random.Random(seed)
    nodes = [f"{prefix}{i}" for i in range(length)]
    columns: dict[str, list[float]] = {nodes[0]: [rng.gauss(0, 1) for _ in range(rows)]}
    for parent, child in itertools.pairwise(nodes):
        columns[child] = [2.0 * x + rng.gauss(0, 0.1) for x in columns[parent]]
    edges = [[parent, child] for parent, child in itertools.pairwise(nodes)]
    return {"graph": {"nodes": nodes, "edges": edges}, "traces": columns,
            "config": {"seed": seed, "quality": "GOOD"}}


def run_in_threads(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


def test_two_threads_calls_on_one_worker_each_see_only_their_own_progress(
    make_worker: Callable[..., Worker],
) -> None:
    fallback: list[dict[str, Any]] = []
    worker = make_worker(on_progress=fallback.append)
    seen: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}

    def fits(prefix: str) -> Callable[[], None]:
        def job() -> None:
            for seed in range(2):
                request = chain_request(prefix, 5, seed=seed)
                worker.call("fit", request, on_progress=seen[prefix].append)
        return job

    run_in_threads([fits("A"), fits("B")])
    for prefix, own in seen.items():
        nodes = [p["node"] for p in own if "node" in p]
        assert nodes and all(node.startswith(prefix) for node in nodes), (prefix, own)
        ids = {p["request_id"] for p in own}
        assert len(ids) == 2, f"{prefix}: two fits, two request ids, got {ids}"
        assert [p["done"] for p in own if p["stage"] == "fitting"][-1] == 4
    assert not {p["request_id"] for p in seen["A"]} & {p["request_id"] for p in seen["B"]}
    assert fallback == [], "a call with its own callback never reaches the Worker's"


def test_a_call_without_its_own_callback_falls_back_to_the_workers(
    make_worker: Callable[..., Worker],
) -> None:
    fallback: list[dict[str, Any]] = []
    worker = make_worker(on_progress=fallback.append)
    worker.call("fit", chain_request("C", 4))
    assert [p["node"] for p in fallback if p.get("stage") == "fitting" and "node" in p]


def test_worker_fit_sample_and_evaluate_take_a_per_call_on_progress(
    make_worker: Callable[..., Worker],
) -> None:
    """Issue 19's API: two threads on one Worker, each call's stages reach its own callback."""
    worker = make_worker()
    seen: dict[str, list[dict[str, Any]]] = {"D": [], "E": []}

    def fit_and_sample() -> None:
        request = chain_request("D", 6)
        fit = worker.fit(request["graph"], request["traces"], on_progress=seen["D"].append,
                         **request["config"])
        worker.sample(fit, num_samples=200, seed=1, on_progress=seen["D"].append)

    def fit_and_evaluate() -> None:
        request = chain_request("E", 6, seed=3)
        fit = worker.fit(request["graph"], request["traces"], on_progress=seen["E"].append,
                         **request["config"])
        worker.evaluate(fit, request["traces"], on_progress=seen["E"].append)

    run_in_threads([fit_and_sample, fit_and_evaluate])
    stages = {prefix: [p["stage"] for p in own] for prefix, own in seen.items()}
    for prefix, own in seen.items():
        assert all(p["node"].startswith(prefix) for p in own if "node" in p), own
        fit_stages = [s for s in dict.fromkeys(stages[prefix]) if s != "loading"]
        assert fit_stages[:4] == ["checking", "fitting", "scoring", "storing"], stages[prefix]
    assert stages["D"][-1] == "sampling" and "sampling" not in stages["E"]
    assert stages["E"][-1] == "diagnostics", "evaluate announces DoWhy's parts (on by default)"
    assert not {p["request_id"] for p in seen["D"]} & {p["request_id"] for p in seen["E"]}
