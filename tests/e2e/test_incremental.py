"""Incremental refits end to end: a fit reuses the nodes whose inputs it has already fitted.

Every test drives real workers; "equal" means value for value against a fresh worker's
full fit of the same request and seed (mechanisms, candidates, held-out scores, a seeded
sample), never against the incremental worker itself.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import RequestCancelled, Worker

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: shadows nothing
import datagen
from support.worker_env import ONE_THREAD

SEED = 7
#: roots v000..v003; v004 ← v000; v005 ← v001 v003; v006 ← v001 v002 v003;
#: v007 ← v000 v002 v004 v005
BASE = datagen.random_dag(n_nodes=8, edge_probability=0.35, n_rows=300, seed=5)
NON_ROOTS = ["v004", "v005", "v006", "v007"]


def request(base: dict[str, Any] = BASE, *, add: list[list[str]] = (),  # type: ignore[assignment]
            drop: list[list[str]] = (), **config: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """``base`` with edges added or dropped, seeded, and ``config``."""
    made = copy.deepcopy(base)
    edges = [e for e in made["graph"]["edges"] if e not in drop] + [list(e) for e in add]
    made["graph"]["edges"] = edges
    made["config"] = {"seed": SEED, "validate_r2": False, **config}
    return made


def fit(worker: Worker, params: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = worker.call("fit", params, timeout=600)
    return result


def same_model(worker: Worker, left: dict[str, Any], other: Worker,
               right: dict[str, Any]) -> None:
    """Two fits equal value for value: what they say and what their models draw."""
    assert left["scm"] == right["scm"]  # every mechanism's description and candidates
    assert left["validation"] == right["validation"]  # every held-out score
    assert left["warnings"] == right["warnings"]
    for key in ("seed", "num_train", "num_val", "fast_paths"):
        assert left["metadata"][key] == right["metadata"][key], key
    draws = [w.call("sample", {"model_id": r["model_id"], "num_samples": 200, "seed": 3})
             for w, r in ((worker, left), (other, right))]
    assert draws[0]["samples"] == draws[1]["samples"]


def worker_args(*extra: str, store: Path | None = None) -> tuple[str, ...]:
    where = ("--store", str(store)) if store is not None else ("--no-store",)
    return ("--no-warmup", "--test-methods", *ONE_THREAD, *where, *extra)


@pytest.fixture
def workers(make_worker: Callable[..., Worker]) -> Iterator[Callable[..., Worker]]:
    def start(*extra: str, store: Path | None = None) -> Worker:
        worker = make_worker(worker_args=worker_args(*extra, store=store))
        worker.start()
        return worker

    yield start


@pytest.fixture(scope="module")
def reference(worker_python: str) -> Iterator[Worker]:
    """The full fits "equal" is judged against: its own process, every fit ``cache: false``,
    so nothing an earlier test fitted on it can be reused (each test asserts it)."""
    with Worker(worker_python, worker_args=worker_args()) as worker:
        yield worker


def full_fit(reference: Worker, params: dict[str, Any]) -> dict[str, Any]:
    done = fit(reference, {**params, "config": {**params["config"], "cache": False}})
    assert done["metadata"]["reused_nodes"] == []
    return done


@pytest.fixture(scope="module")
def shared(worker_python: str) -> Iterator[Worker]:
    """One worker for the tests whose every fit either reuses the base fit or must not:
    the cache keys of what they fit differ from one another (the change under test), so
    what one test leaves cached cannot be reused by the next."""
    with Worker(worker_python, worker_args=worker_args()) as worker:
        yield worker


def test_an_added_edge_refits_one_node_and_equals_a_full_fit(workers: Callable[..., Worker],
                                                             reference: Worker) -> None:
    incremental = workers()
    first = fit(incremental, request())
    assert first["metadata"]["reused_nodes"] == []
    grown = fit(incremental, request(add=[["v004", "v006"]]))
    assert grown["metadata"]["reused_nodes"] == ["v004", "v005", "v007"]
    assert set(grown["metadata"]["node_fit_ms"]) == set(NON_ROOTS)
    same_model(incremental, grown, reference, full_fit(reference, request(add=[["v004", "v006"]])))


def test_a_changed_column_refits_that_node_and_its_children(
        workers: Callable[..., Worker], reference: Worker) -> None:
    incremental = workers()
    fit(incremental, request())
    changed = request()
    changed["traces"]["v005"] = [v + 0.25 * (i % 3) for i, v in enumerate(changed["traces"]["v005"])]
    again = fit(incremental, changed)
    assert again["metadata"]["reused_nodes"] == ["v004", "v006"]  # v005 and its child v007 refit
    same_model(incremental, again, reference, full_fit(reference, changed))


@pytest.mark.parametrize(("change", "refitted"), [
    ({"drop": [["v003", "v006"]]}, ["v006"]),  # a parent set
    ({"mechanisms": {"v005": "linear"}}, ["v005"]),  # a node's hand-set spec
    ({"quality": "BETTER"}, NON_ROOTS),
    ({"linear_tolerance": 0.05}, NON_ROOTS),
    ({"test_size": 0.25}, NON_ROOTS),  # the split
    ({"seed": SEED + 1}, NON_ROOTS),
])
def test_a_changed_input_never_reuses_the_node(
        shared: Worker, change: dict[str, Any], refitted: list[str]) -> None:
    fit(shared, request())
    drop = change.pop("drop", [])
    again = fit(shared, request(drop=drop, **change))
    assert again["metadata"]["reused_nodes"] == sorted(set(NON_ROOTS) - set(refitted))


def test_cache_false_is_a_fresh_fit(shared: Worker) -> None:
    fit(shared, request())
    again = fit(shared, request(add=[["v004", "v006"]], cache=False))
    assert again["metadata"]["reused_nodes"] == []


def test_reuse_survives_a_restart_and_a_tampered_model_is_not_reused(
        workers: Callable[..., Worker], tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = workers(store=store)
    kept = fit(first, request(persist=True))
    first.close()
    restarted = workers(store=store)
    grown = fit(restarted, request(add=[["v004", "v006"]]))
    assert grown["metadata"]["reused_nodes"] == ["v004", "v005", "v007"]
    restarted.close()

    path = store / f"{kept['model_id']}.model"
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    tampered = workers(store=store)
    again = fit(tampered, request(add=[["v000", "v006"]]))
    assert again["metadata"]["reused_nodes"] == []
    tampered.ping()


def test_an_evicted_model_takes_its_nodes_with_it(workers: Callable[..., Worker]) -> None:
    worker = workers("--max-models", "1")
    fit(worker, request())
    other = datagen.random_dag(n_nodes=4, edge_probability=0.5, n_rows=300, seed=9)
    fit(worker, request(other))  # evicts the first model (not persisted)
    again = fit(worker, request(add=[["v004", "v006"]]))
    assert again["metadata"]["reused_nodes"] == []


def test_a_cancelled_incremental_fit_stores_nothing_that_is_reused(
        workers: Callable[..., Worker]) -> None:
    """Cancelled once its first newly fitted node is in: -32800, the worker serves on, and
    the next fit reuses only what the first, finished fit kept."""
    dag = datagen.random_dag(**datagen.DAG)
    nodes = dag["graph"]["nodes"]
    small = subgraph(dag, nodes[:12])
    larger = subgraph(dag, nodes[:40])
    worker = workers()
    kept = fit(worker, request(small))
    kept_nodes = sorted(node for node in kept["scm"]["mechanisms"]
                        if any(edge[1] == node for edge in small["graph"]["edges"]))
    new_node = threading.Event()

    def on_progress(params: dict[str, Any]) -> None:
        node = params.get("node")
        if params.get("stage") == "fitting" and node is not None and node not in kept_nodes:
            new_node.set()

    call = worker.submit("fit", request(larger), on_progress=on_progress)
    assert new_node.wait(600), "no newly fitted node reported"
    call.cancel()
    with pytest.raises(RequestCancelled):
        call.result(timeout=600)
    assert worker.ping() == "pong"
    again = fit(worker, request(larger))
    assert again["metadata"]["reused_nodes"] == kept_nodes


def subgraph(dag: dict[str, Any], nodes: list[str]) -> dict[str, Any]:
    edges = [e for e in dag["graph"]["edges"] if e[0] in nodes and e[1] in nodes]
    return {"graph": {"nodes": nodes, "edges": edges},
            "traces": {n: dag["traces"][n] for n in nodes}}
