"""Batch fitting on a real Dask cluster: a ``dask scheduler`` and ``dask worker --preload
scm_worker.cluster`` processes on 127.0.0.1, started from the worker interpreter (3.11),
driven by the 3.13 client through its gateway worker (``WorkerPool(scheduler=...)``).
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scm_client import (
    BatchItem,
    ClusterUnavailable,
    InsufficientData,
    InvalidParams,
    ValidationFailed,
    Worker,
    WorkerPool,
)
from support.dask_cluster import START_TIMEOUT, DaskCluster


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


@pytest.fixture(scope="module")
def cluster_factory(worker_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], DaskCluster]]:
    started: list[DaskCluster] = []

    def start(n_workers: int = 2) -> DaskCluster:
        cluster = DaskCluster(worker_python, tmp_path_factory.mktemp("dask"))
        started.append(cluster)
        cluster.start(n_workers)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope="module")
def cluster(cluster_factory: Callable[[int], DaskCluster]) -> DaskCluster:
    return cluster_factory(2)


@pytest.fixture(scope="module")
def local_pool() -> Iterator[WorkerPool]:
    """The local fits the cluster's must equal, seed for seed: two workers for the module.
    Every request fitted on it says ``cache: false`` (small_request, or set by the test),
    so no local fit reuses a node an earlier test fitted."""
    with WorkerPool(2, worker_args=("--no-store",)) as pool:
        yield pool


def local_fits(pool: WorkerPool, requests: list[dict[str, Any]]) -> list[BatchItem]:
    assert all(request["config"]["cache"] is False for request in requests)
    return pool.fit_many(requests)


def cluster_pool(cluster: DaskCluster, *worker_args: str) -> WorkerPool:
    return WorkerPool(scheduler=cluster.address, worker_args=worker_args or ("--no-store",), start_timeout=START_TIMEOUT)


# -- tests ------------------------------------------------------------------------------


def test_forty_graphs_on_the_cluster_equal_the_local_pool_seed_for_seed(cluster: DaskCluster,
                                                                       local_pool: WorkerPool) -> None:
    requests = [small_request(i) for i in range(40)]
    expected = local_fits(local_pool, requests)
    seen: list[tuple[int, int]] = []
    with cluster_pool(cluster) as pool:
        items = pool.fit_many(requests, on_progress=lambda done, total, item: seen.append((done, total)))
        assert [item.index for item in items] == list(range(40))
        assert sorted(seen) == [(i, 40) for i in range(1, 41)]
        for got, want in zip(items, expected, strict=True):
            assert got.ok and want.ok, (got.error, want.error)
            assert got.result is not None and want.result is not None
            assert got.result.scm == want.result.scm
            assert got.result.validation == want.result.validation
            assert got.result.metadata["seed"] == want.result.metadata["seed"] == got.index
        assert pool.last_batch is not None
        assert pool.last_batch["workers"] == 2 and pool.last_batch["rescheduled"] is False
        assert len({item.result.metadata["dask_worker"] for item in items if item.result}) == 2
        # without persist the model came home to the gateway: sample-able at once
        first = items[0].result
        assert first is not None and first.model_id.startswith("m-")
        drawn = pool.workers[0].sample(first, "interventional",
                                       [{"type": "hard", "node": first.scm["graph"]["nodes"][0], "value": 1.0}],
                                       num_samples=200, seed=3)
        assert drawn.statistics[first.scm["graph"]["nodes"][0]]["mean"] == 1.0


def test_bad_requests_come_back_as_item_errors_with_the_local_fit_s_error(
    cluster: DaskCluster, make_worker: Callable[..., Worker]
) -> None:
    good = small_request(7)
    self_loop = {"graph": {"nodes": ["a"], "edges": [["a", "a"]]}, "traces": {"a": [1.0]}}
    too_short = small_request(8, rows=20)  # checked fine, refused inside the Dask task (min_samples)
    strict = {**small_request(9), "config": {"seed": 9, "r2_threshold": 0.9999, "cache": False}}
    requests = [good, self_loop, too_short, strict, small_request(10)]
    with cluster_pool(cluster) as pool:
        items = pool.fit_many(requests)
        assert [item.ok for item in items] == [True, False, False, False, True]
        local = make_worker()
        for index, kind in ((1, InvalidParams), (2, InsufficientData), (3, ValidationFailed)):
            error = items[index].error
            assert isinstance(error, kind), repr(error)
            request = requests[index]
            with pytest.raises(kind) as raised:
                local.fit(request["graph"], request["traces"], **request.get("config", {}))
            assert (error.code, error.message) == (raised.value.code, raised.value.message)
            if kind is not ValidationFailed:  # its data names the model, stored on each side
                assert error.data == raised.value.data
        assert isinstance(items[1].error, InvalidParams) and items[1].error.field == "graph.edges[0]"
        failed = items[3].error
        assert isinstance(failed, ValidationFailed) and failed.model_id is not None
        assert pool.workers[0].sample(failed.model_id, num_samples=10, seed=1).statistics  # stored all the same


def test_persisted_cluster_fits_can_be_sampled_by_any_worker(
    cluster: DaskCluster, tmp_path: Path, make_worker: Callable[..., Worker]
) -> None:
    store = tmp_path / "store"
    request = {**small_request(11), "config": {"seed": 11, "validate_r2": False, "persist": True}}
    with cluster_pool(cluster, "--no-warmup", "--store", str(store)) as pool:
        [item] = pool.fit_many([request])
        assert item.ok and item.result is not None, item.error
        model_id = item.result.model_id
        assert item.result.metadata["dask_worker"].startswith("tcp://127.0.0.1:")
        assert (store / f"{model_id}.model").exists()  # written by the Dask worker
        [again] = pool.fit_many([request])  # the fit cache's entry came through the store too
        assert again.result is not None and again.result.model_id == model_id
        assert again.result.metadata["cache_hit"] is True
    other = make_worker(worker_args=("--no-warmup", "--store", str(store)))
    node = item.result.scm["graph"]["nodes"][-1]
    assert other.sample(model_id, num_samples=50, seed=2).statistics[node]["count"] == 50


def test_an_unreachable_scheduler_is_a_clear_error_naming_the_address_fast() -> None:
    with socket.socket() as probe:  # a free loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    with WorkerPool(scheduler=address, worker_args=("--no-warmup", "--no-store"), start_timeout=START_TIMEOUT) as pool:
        pool.start()
        started = time.monotonic()
        with pytest.raises(ClusterUnavailable) as raised:
            pool.fit_many([small_request(1)])
        elapsed = time.monotonic() - started
    assert address in str(raised.value)
    assert raised.value.scheduler == address and raised.value.reason == "unreachable"
    assert elapsed < 20, f"took {elapsed:.1f}s"


def test_a_scheduler_without_workers_and_bad_params_are_refused_fast(
    cluster_factory: Callable[[int], DaskCluster], make_worker: Callable[..., Worker]
) -> None:
    bare = cluster_factory(0)
    worker = make_worker()
    request = small_request(1)
    started = time.monotonic()
    with pytest.raises(ClusterUnavailable) as raised:
        worker.call("batch.fit", {"requests": [request], "scheduler": bare.address, "connect_timeout": 2})
    assert time.monotonic() - started < 15
    assert raised.value.reason == "no_workers" and bare.address in raised.value.message
    for params, field_name in (({"requests": [request], "scheduler": 8786}, "scheduler"),
                               ({"requests": {}, "scheduler": bare.address}, "requests"),
                               ({"requests": [], "scheduler": bare.address, "connect_timeout": 0}, "connect_timeout"),
                               ({"requests": [], "scheduler": bare.address, "persist": True}, "persist")):
        with pytest.raises(InvalidParams) as refused:
            worker.call("batch.fit", params)
        assert refused.value.field == field_name


def test_scm_batch_with_a_scheduler(cluster: DaskCluster, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"req{i}.json").write_text(json.dumps(small_request(20 + i)))
    out = tmp_path / "results.jsonl"
    done = subprocess.run([sys.executable, "-m", "scm_client.cli", "batch", str(folder), "--scheduler",
                           cluster.address, "--out", str(out)], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["req0", "req1", "req2"] and all(line["ok"] for line in lines)
    assert all(line["result"]["metadata"]["dask_worker"].startswith("tcp://") for line in lines)


def test_a_dask_worker_killed_mid_batch_still_yields_every_result(
    cluster_factory: Callable[[int], DaskCluster],
) -> None:
    cluster = cluster_factory(2)
    requests = [small_request(100 + i) for i in range(40)]
    first_done = threading.Event()

    def on_progress(done: int, total: int, item: BatchItem) -> None:
        if not first_done.is_set():
            first_done.set()
            cluster.kill_worker(0)

    with cluster_pool(cluster) as pool:
        items = pool.fit_many(requests, on_progress=on_progress)
        batch = pool.last_batch
    assert first_done.is_set()
    assert [item.index for item in items] == list(range(40))
    assert all(item.ok for item in items), [repr(item.error) for item in items if not item.ok]
    assert batch is not None and batch["rescheduled"] is True, batch
    assert len(batch["lost_workers"]) == 1 and batch["rescheduled_items"]
    assert all(items[i].attempts == 2 for i in batch["rescheduled_items"])


def test_batch_items_with_extra_columns_fit_the_graph_and_name_the_rest(
    cluster: DaskCluster, tmp_path: Path, make_worker: Callable[..., Worker]
) -> None:
    """A row id beside the nodes: ignored on every path (in memory, persisted by the Dask
    worker, from the cache), named in each item's ``extra_columns`` warning; refused with
    ``config.extra_columns: "error"``."""
    plain = small_request(12)
    wide = {**plain, "traces": {"row_id": list(range(300)), **plain["traces"]}}
    strict = {**wide, "config": {**plain["config"], "extra_columns": "error"}}
    stored = {**wide, "config": {"seed": 12, "validate_r2": False, "persist": True}}
    local = make_worker().fit(plain["graph"], plain["traces"], **plain["config"])
    with cluster_pool(cluster, "--no-warmup", "--store", str(tmp_path / "store")) as pool:
        items = pool.fit_many([wide, strict, stored])
        [again] = pool.fit_many([{**stored, "traces": plain["traces"]}])
    assert [item.ok for item in items] == [True, False, True], [item.error for item in items]
    assert isinstance(items[1].error, InvalidParams) and items[1].error.field == "traces"
    for item in (items[0], items[2]):
        assert item.result is not None and item.result.scm == local.scm
        assert [w for w in item.result.warnings if w["code"] == "extra_columns"] == [
            {"code": "extra_columns", "node": None, "columns": ["row_id"],
             "message": "1 trace column(s) that are not graph nodes were ignored: ['row_id']"}]
    assert again.result is not None and again.result.metadata["cache_hit"] is True
    assert again.result.scm == local.scm  # the first and last items share a key: either model
    assert again.result.model_id in {item.result.model_id for item in items if item.result}
    assert not [w for w in again.result.warnings if w["code"] == "extra_columns"]


def test_hand_set_mechanisms_travel_with_a_batch_to_the_cluster(cluster: DaskCluster) -> None:
    """``config.mechanisms`` reaches the Dask worker's fit: the nodes come back as set."""
    request = small_request(12)
    roots = [n for n in request["graph"]["nodes"] if all(b != n for _, b in request["graph"]["edges"])]
    children = [b for _, b in request["graph"]["edges"]]
    request["config"]["mechanisms"] = {roots[0]: "normal", children[-1]: "ridge"}
    with cluster_pool(cluster) as pool:
        [item] = pool.fit_many([request])
    assert item.ok and item.result is not None, item.error
    assert "dask_worker" in item.result.metadata
    mechanisms = item.result.scm["mechanisms"]
    assert (mechanisms[roots[0]]["model"], mechanisms[roots[0]]["chosen_by"]) == ("norm", "user")
    assert (mechanisms[children[-1]]["model"], mechanisms[children[-1]]["spec"]) == ("RidgeCV", "ridge")


def chain_request(edges: list[list[str]], rows: int = 300, seed: int = 4) -> dict[str, Any]:
    """Four linear-Gaussian nodes whose columns do not depend on ``edges`` (the same traces
    under every graph of them), seeded, with the caches on."""
    rng = random.Random(17)
    a = [rng.gauss(0, 1) for _ in range(rows)]
    b = [1.5 * x + rng.gauss(0, 1) for x in a]
    c = [1.5 * x + 0.5 * y + rng.gauss(0, 1) for x, y in zip(a, b, strict=True)]
    d = [1.5 * y + 0.5 * x + rng.gauss(0, 1) for x, y in zip(a, b, strict=True)]
    return {"graph": {"nodes": ["r_a", "r_b", "r_c", "r_d"], "edges": edges},
            "traces": {"r_a": a, "r_b": b, "r_c": c, "r_d": d},
            "config": {"seed": seed, "validate_r2": False}}


def test_batch_fit_reuses_no_node_and_the_gateway_keeps_its_models_nodes(cluster: DaskCluster) -> None:
    """docs/PROTOCOL.md, incremental refits: the Dask path reuses no node the gateway holds
    (the Dask workers have not fitted these traces); the models it brings back are kept,
    so a later local fit reuses theirs."""
    first = [["r_a", "r_b"], ["r_a", "r_c"], ["r_b", "r_d"]]
    batched = [*first, ["r_b", "r_c"]]  # r_c's parents change: only the batch fits this r_c
    with cluster_pool(cluster) as pool:
        gateway = pool.workers[0]
        request = chain_request(first)
        gateway.call("fit", request)
        [item] = pool.fit_many([chain_request(batched)])
        assert item.ok and item.result is not None, item.error
        assert item.result.metadata["reused_nodes"] == []  # r_b and r_d were held
        again = gateway.call("fit", chain_request([*batched, ["r_a", "r_d"]]))
        assert again["metadata"]["reused_nodes"] == ["r_b", "r_c"]


def test_batch_items_over_the_same_traces_reuse_each_others_nodes(cluster: DaskCluster,
                                                                  local_pool: WorkerPool) -> None:
    """docs/PROTOCOL.md, incremental refits: a Dask worker keeps the models it fitted, so of
    four items sharing r_b's fit (two Dask workers: one of them fits at least two items) at
    least one reuses it; every item equals a fresh local fit of its request value for value."""
    edges = [["r_a", "r_b"], ["r_a", "r_c"], ["r_b", "r_d"], ["r_c", "r_d"]]
    requests = [chain_request(edges[: 1 + i], seed=5) for i in range(4)]
    expected = local_fits(local_pool, [{**r, "config": {**r["config"], "cache": False}} for r in requests])
    with cluster_pool(cluster) as pool:
        items = pool.fit_many(requests)
    for got, want in zip(items, expected, strict=True):
        assert got.ok and want.ok and got.result is not None and want.result is not None, got.error
        assert got.result.scm == want.result.scm and got.result.validation == want.result.validation
    reused = [item.result.metadata["reused_nodes"] for item in items if item.result is not None]
    assert any("r_b" in nodes for nodes in reused), reused


def test_fast_quality_travels_with_a_batch_to_the_cluster(cluster: DaskCluster, local_pool: WorkerPool) -> None:
    """``quality: "FAST"`` reaches the Dask workers' fits: the same models as the local pool's
    FAST fits, seed for seed, each node saying FAST chose it."""
    requests = [small_request(i) for i in (3, 4)]
    for request in requests:
        request["config"]["quality"] = "FAST"
    expected = local_fits(local_pool, requests)
    with cluster_pool(cluster) as pool:
        items = pool.fit_many(requests)
    for got, want in zip(items, expected, strict=True):
        assert got.ok and want.ok and got.result is not None and want.result is not None, got.error
        assert "dask_worker" in got.result.metadata and got.result.metadata["quality"] == "FAST"
        assert got.result.scm == want.result.scm and got.result.validation == want.result.validation
        fitted = [m for m in got.result.scm["mechanisms"].values() if m.get("parents")]
        assert fitted and all(m["chosen_by"] == "FAST" for m in fitted)
