"""Resource limits: every size a request can choose is bounded, and a breach is refused
with -32004 naming the limit before any work starts.

One worker with small limits (flags as in docs/PROTOCOL.md). "Refused, not attempted"
is proven, not assumed: a fit that is attempted announces itself with a ``progress``
notification before anything else, so the very next line after a refused fit must be
its error; and the store must hold no new model. Per-node checks are unit-tested in
tests/worker/test_checks.py; memory eviction under ``--max-memory-mb`` in
tests/e2e/test_store.py::test_eviction_keeps_memory_under_budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reliability_support import RawWorker, chain_traces

LIMITS = {"max_rows": 50, "max_nodes": 5, "max_edges": 4, "max_cells": 120, "max_num_samples": 100,
          "max_line_bytes": 20_000, "max_models": 2}
FLAGS = [arg for name, value in LIMITS.items() for arg in ("--" + name.replace("_", "-"), str(value))]
CHAIN = {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}


@pytest.fixture(scope="module")
def limited() -> Iterator[RawWorker]:
    worker = RawWorker("--no-warmup", "--test-methods", "--no-store", *FLAGS)
    assert worker.result("initialize")["limits"] | LIMITS == worker.result("initialize")["limits"]
    yield worker
    worker.stop()


def fit_chain(worker: RawWorker, seed: int) -> str:
    params = {"graph": CHAIN, "traces": chain_traces(seed, rows=40), "config": {"seed": seed, "min_samples": 10}}
    return str(worker.result("fit", params, timeout=300)["model_id"])


@pytest.fixture(scope="module")
def model_id(limited: RawWorker) -> str:
    return fit_chain(limited, 1)


def models_in_memory(worker: RawWorker) -> int:
    return int(worker.result("models.list")["models_in_memory"])


def refused_at_once(worker: RawWorker, method: str, params: Any, limit: str, field: str | None) -> dict[str, Any]:
    """Send; the very next line (no progress notification first) is -32004 for ``limit``."""
    id_ = worker.next_id()
    worker.send({"jsonrpc": "2.0", "method": method, "params": params, "id": id_})
    started = time.monotonic()
    reply = worker.read_json(timeout=60)
    assert reply.get("id") == id_ and "error" in reply, f"expected the refusal first, got {reply}"
    error = reply["error"]
    assert error["code"] == -32004, error
    assert error["data"]["limit"] == limit, error
    assert error["data"]["value"] > error["data"]["max"], error
    if field is not None:
        assert error["data"]["field"] == field, error
    assert limit in error["message"]
    return {"error": error, "seconds": time.monotonic() - started}


def columns(nodes: list[str], rows: int) -> dict[str, list[float]]:
    return {node: [float(i % 7) for i in range(rows)] for node in nodes}


FIT_BREACHES = {
    "max_rows": ({"nodes": ["X", "Y"], "edges": [["X", "Y"]]}, columns(["X", "Y"], 51), "traces"),
    "max_nodes": ({"nodes": list("ABCDEF"), "edges": []}, columns(list("ABCDEF"), 10), "graph.nodes"),
    "max_edges": ({"nodes": list("ABCD"), "edges": [["A", "B"], ["A", "C"], ["A", "D"], ["B", "C"], ["B", "D"]]},
                  columns(list("ABCD"), 10), "graph.edges"),
    "max_cells": (CHAIN, columns(["X", "Y", "Z"], 41), "traces"),  # 123 cells, every other limit kept
}


@pytest.mark.parametrize("limit", sorted(FIT_BREACHES))
def test_fit_over_a_size_limit_is_refused_before_any_work(limited: RawWorker, model_id: str, limit: str) -> None:
    graph, traces, field = FIT_BREACHES[limit]
    before = models_in_memory(limited)
    refused_at_once(limited, "fit", {"graph": graph, "traces": traces, "config": {"min_samples": 2}}, limit, field)
    assert models_in_memory(limited) == before
    limited.assert_serving()


def test_rows_in_other_methods_are_bounded_too(limited: RawWorker, model_id: str) -> None:
    over = columns(["X", "Y", "Z"], 51)
    refused_at_once(limited, "evaluate", {"model_id": model_id, "traces": over}, "max_rows", "traces")
    refused_at_once(limited, "sample", {"model_id": model_id, "kind": "counterfactual", "observed": over,
                                        "interventions": [{"node": "X", "value": 1.0}], "num_samples": 1},
                    "max_rows", "observed")
    refused_at_once(limited, "anomaly", {"model_id": model_id, "target": "Z", "rows": over}, "max_rows", "rows")
    refused_at_once(limited, "distribution_change", {"model_id": model_id, "target": "Z", "old": over,
                                                     "new": columns(["X", "Y", "Z"], 5)}, "max_rows", "old")


@pytest.mark.parametrize(
    ("method", "knob", "maximum"),
    [
        ("sample", "num_samples", LIMITS["max_num_samples"]),
        ("effect", "num_samples", 200_000),
        ("effect", "num_bootstrap", 200),
        ("anomaly", "num_bootstrap", 200),
        ("arrow_strength", "num_samples_conditional", 50_000),
        ("influence", "num_training_samples", 100_000),
        ("influence", "num_samples_randomization", 5_000),
        ("influence", "num_samples_baseline", 20_000),
        ("anomaly", "num_distribution_samples", 50_000),
        ("distribution_change", "num_samples", 200_000),
        ("evaluate", "max_permutations", 1_000),
    ],
)
def test_every_sample_count_a_caller_sets_is_bounded(
    limited: RawWorker, model_id: str, method: str, knob: str, maximum: int
) -> None:
    rows = columns(["X", "Y", "Z"], 5)
    base: dict[str, dict[str, Any]] = {
        "sample": {}, "effect": {"target": "Z", "alternative": [{"node": "X", "value": 1.0}]},
        "arrow_strength": {"target": "Z"}, "influence": {"target": "Z"},
        "anomaly": {"target": "Z", "rows": rows}, "distribution_change": {"target": "Z", "old": rows, "new": rows},
        "evaluate": {"traces": rows, "falsify_graph": True},
    }
    params = {"model_id": model_id, **base[method], knob: maximum + 1}
    refusal = refused_at_once(limited, method, params, knob, knob)
    assert refusal["error"]["data"]["max"] == maximum
    assert refusal["seconds"] < 10  # refused, not computed: these counts would take minutes
    limited.assert_serving()


def test_line_over_the_byte_limit_is_refused_and_the_next_line_parses(limited: RawWorker) -> None:
    big = {"jsonrpc": "2.0", "method": "fit", "id": "big",
           "params": {"graph": CHAIN, "traces": columns(["X", "Y", "Z"], 2000)}}
    limited.send_raw(json.dumps(big).encode() + b'\n{"jsonrpc":"2.0","method":"ping","id":"next"}\n')
    reply = limited.read_json()
    assert reply["error"]["code"] == -32004 and reply["error"]["data"]["limit"] == "max_line_bytes"
    assert reply["id"] is None  # the line was never parsed, so its id is unknown
    assert limited.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": "next"}


def test_models_beyond_max_models_are_evicted_least_recently_used_first(raw_worker: Any) -> None:
    worker = raw_worker("--no-warmup", "--no-store", *FLAGS)  # its own: the module's model must stay
    first, second, third = (fit_chain(worker, seed) for seed in (11, 12, 13))
    assert models_in_memory(worker) == LIMITS["max_models"]
    reply = worker.call("sample", {"model_id": first, "num_samples": 5})
    assert reply["error"]["code"] == -32003 and reply["error"]["data"]["reason"] == "evicted", reply
    assert worker.result("sample", {"model_id": third, "num_samples": 5})["metadata"]["num_samples"] == 5
    assert {m["model_id"] for m in worker.result("models.list")["models"]} == {second, third}


def test_sample_whose_output_exceeds_the_cell_budget_is_refused(limited: RawWorker, model_id: str) -> None:
    # 3 nodes x 100 samples = 300 cells > --max-cells 120, every other limit kept. Was attempted, not
    # refused: with the defaults (1,000,000 samples, 1,000 nodes) one request could build 10^9 cells.
    refusal = refused_at_once(limited, "sample", {"model_id": model_id, "num_samples": LIMITS["max_num_samples"]},
                              "max_cells", "num_samples")
    assert refusal["error"]["data"]["value"] == 3 * LIMITS["max_num_samples"]
    assert limited.result("sample", {"model_id": model_id, "num_samples": 40})["metadata"]["num_samples"] == 40


@pytest.mark.parametrize(("method", "knob"), [
    ("effect", "num_samples"), ("arrow_strength", "num_samples_conditional"),
    ("influence", "num_training_samples"), ("anomaly", "num_distribution_samples"),
    ("distribution_change", "num_samples"),
])
def test_question_draws_over_the_cell_budget_are_refused(
    limited: RawWorker, model_id: str, method: str, knob: str
) -> None:
    rows = columns(["X", "Y", "Z"], 5)
    base = {
        "effect": {"target": "Z", "alternative": [{"type": "hard", "node": "X", "value": 1.0}]},
        "arrow_strength": {"target": "Z"},
        "influence": {"target": "Z"},
        "anomaly": {"target": "Z", "rows": rows},
        "distribution_change": {"target": "Z", "old": rows, "new": rows},
    }[method]
    refused_at_once(limited, method, {"model_id": model_id, **base, knob: 41}, "max_cells", knob)  # 123 cells
    limited.assert_serving()
