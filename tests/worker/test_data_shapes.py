"""Data as users have it, on the real worker process: wider frames than the graph, and
rows with only the columns a question reads.

Trace columns that are not nodes (a row id, a date) are ignored and named (the fit's
``extra_columns`` warning; ``metadata.ignored_columns`` elsewhere), leave the fit-cache
key alone, and ``config.extra_columns: "error"`` keeps the exact-match rule. A question's
rows need only the columns it reads (needs.py); a missing one is -32602 naming it.
``sample`` with ``kind: "interventional"`` and ``observed`` rows is DoWhy's
``interventional_samples(observed_data=…)``, compared here with DoWhy in this process on
the same seeded fit and the same seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import WorkerProcess
from dowhy import gcm
from scm_worker.checks import parse_fit_request
from scm_worker.engine.fitting import FittedModel, fit_model
from scm_worker.engine.frames import to_frame
from scm_worker.engine.interventions import Intervention
from scm_worker.limits import Limits

#: a fit with model selection on a loaded 2-core machine: a liveness bound, not a speed claim
REPLY_TIMEOUT = 180.0
NODES = list("abcde")
ROWS = 400


def _traces() -> dict[str, list[float]]:
    """a → b → c ← d → e, non-linear in places; e is outside c's ancestors."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=ROWS)
    d = rng.normal(size=ROWS)
    b = 1.5 * a + rng.normal(scale=0.5, size=ROWS)
    c = np.tanh(b) + 0.8 * d**2 + rng.normal(scale=0.3, size=ROWS)
    e = np.sin(d) + rng.normal(scale=0.3, size=ROWS)
    return {n: v.tolist() for n, v in zip(NODES, (a, b, c, d, e), strict=True)}


GRAPH = {"nodes": NODES, "edges": [["a", "b"], ["b", "c"], ["d", "c"], ["d", "e"]]}
TRACES = _traces()
CONFIG = {"seed": 7, "validate_r2": False}
#: what a user's frame carries beside the nodes; the binary block is not even valid base64,
#: so decoding it would be a -32602
EXTRA = {"id": list(range(ROWS)), "date": ["2026-12-07"] * ROWS,
         "blob": {"dtype": "float64", "data": "not base64!"}}


def _reply(worker: WorkerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The reply (result or error), past the progress notifications sent before it."""
    request_id = worker.next_id()
    worker.send({"jsonrpc": "2.0", "method": method, "id": request_id, "params": params})
    while True:
        reply = worker.read_json(timeout=REPLY_TIMEOUT)
        if reply.get("method") != "progress":
            assert reply.get("id") == request_id, reply
            return dict(reply)


def _result(worker: WorkerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = _reply(worker, method, params)
    assert "error" not in reply, reply
    return dict(reply["result"])


def _invalid(worker: WorkerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = _reply(worker, method, params)
    assert reply.get("error", {}).get("code") == -32602, reply
    return dict(reply["error"]["data"])


def _fit(worker: WorkerProcess, traces: dict[str, Any] | None = None, **config: Any) -> Any:
    params = {"graph": GRAPH, "traces": traces or TRACES, "config": {**CONFIG, **config}}
    return _result(worker, "fit", params)


def _columns(names: str, rows: slice = slice(0, 120)) -> dict[str, Any]:
    return {n: TRACES[n][rows] for n in names}


def _extra_warnings(fit: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in fit["warnings"] if w["code"] == "extra_columns"]


# -- fit: columns that are not nodes ---------------------------------------------------------


def test_extra_columns_are_named_and_hit_the_cache_of_the_request_without_them(
    worker: WorkerProcess,
) -> None:
    plain = _fit(worker)
    wide = _fit(worker, {**EXTRA, **TRACES})
    assert not _extra_warnings(plain)
    assert wide["model_id"] == plain["model_id"] and wide["metadata"]["cache_hit"] is True
    [warning] = _extra_warnings(wide)
    assert warning["columns"] == ["id", "date", "blob"] and wide["status"] == "warning"
    assert "id" in warning["message"]
    again = _fit(worker)  # and back: the plain request hits, without the other's warning
    assert again["metadata"]["cache_hit"] is True and not _extra_warnings(again)


def test_extra_columns_fit_the_same_model_as_without_them(worker: WorkerProcess) -> None:
    plain = _fit(worker, cache=False)
    wide = _fit(worker, {**TRACES, **EXTRA}, cache=False)
    assert wide["metadata"]["cache_hit"] is False and wide["model_id"] != plain["model_id"]
    assert wide["scm"] == plain["scm"] and wide["validation"] == plain["validation"]
    assert wide["metadata"]["num_samples"] == ROWS


def test_config_extra_columns_error_refuses_naming_them(worker: WorkerProcess) -> None:
    data = _invalid(worker, "fit", {"graph": GRAPH, "traces": {**TRACES, **EXTRA},
                                    "config": {**CONFIG, "extra_columns": "error"}})
    assert data["field"] == "traces" and data["missing_in_graph"] == ["id", "date", "blob"]
    assert "trace columns must match graph nodes exactly" in data["reason"]
    assert _fit(worker, extra_columns="error")["model_id"]  # no extra column: fits


def test_a_missing_node_column_is_still_refused_naming_it(worker: WorkerProcess) -> None:
    traces = {n: v for n, v in {**TRACES, **EXTRA}.items() if n != "d"}
    data = _invalid(worker, "fit", {"graph": GRAPH, "traces": traces, "config": CONFIG})
    assert data["field"] == "traces" and data["missing_in_traces"] == ["d"]
    assert "['d']" in data["reason"]


def test_evaluate_ignores_extra_columns_and_names_them(worker: WorkerProcess) -> None:
    model_id = _fit(worker)["model_id"]
    rows = _columns("abcde")
    plain = _result(worker, "evaluate", {"model_id": model_id, "traces": rows})
    wide = _result(worker, "evaluate", {"model_id": model_id, "traces": {**rows, "id": [1] * 120}})
    assert wide["nodes"] == plain["nodes"] and "ignored_columns" not in plain["metadata"]
    assert wide["metadata"]["ignored_columns"] == {"traces": ["id"]}


# -- questions: only the columns they read ---------------------------------------------------


def test_anomaly_rows_need_only_the_target_and_its_ancestors(worker: WorkerProcess) -> None:
    model_id = _fit(worker)["model_id"]
    ask = {"model_id": model_id, "target": "c", "seed": 3, "num_distribution_samples": 500}
    rows = slice(0, 4)
    full = _result(worker, "anomaly", {**ask, "rows": _columns("abcde", rows)})
    upstream = _result(worker, "anomaly", {**ask, "rows": _columns("abcd", rows)})
    wide = _result(worker, "anomaly", {**ask, "rows": {**_columns("dcba", rows), "id": [1] * 4}})
    assert upstream["scores"] == full["scores"] == wide["scores"]
    assert upstream["attributions"] == full["attributions"] == wide["attributions"]
    assert full["metadata"]["ignored_columns"] == {"rows": ["e"]}
    assert "ignored_columns" not in upstream["metadata"]
    assert wide["metadata"]["ignored_columns"] == {"rows": ["id"]}
    data = _invalid(worker, "anomaly", {**ask, "rows": _columns("bcde", rows)})
    assert data["field"] == "rows" and data["missing_in_traces"] == ["a"]
    assert "['a']" in data["reason"]


def test_distribution_change_rows_need_only_the_target_and_its_ancestors(
    worker: WorkerProcess,
) -> None:
    model_id = _fit(worker)["model_id"]
    ask = {"model_id": model_id, "target": "b", "seed": 5, "measure": "mean", "num_samples": 300}
    old, new = slice(0, 150), slice(150, 300)
    full = _result(worker, "distribution_change", {
        **ask, "old": _columns("abcde", old), "new": _columns("abcde", new)})
    upstream = _result(worker, "distribution_change", {
        **ask, "old": _columns("ab", old), "new": {**_columns("ab", new), "id": [0] * 150}})
    assert upstream["attributions"] == full["attributions"]
    assert full["metadata"]["ignored_columns"] == {"old": ["c", "d", "e"], "new": ["c", "d", "e"]}
    assert upstream["metadata"]["ignored_columns"] == {"new": ["id"]}
    data = _invalid(worker, "distribution_change", {
        **ask, "old": _columns("ab", old), "new": _columns("b", new)})
    assert data["field"] == "new" and data["missing_in_traces"] == ["a"]


def test_effect_observed_rows_need_only_what_the_arms_read(worker: WorkerProcess) -> None:
    """do(b=1) against do(b=0) on observed rows: b and c are redrawn in both arms, so the
    rows need c's other ancestors only (a is b's parent: b is set, a is still read)."""
    model_id = _fit(worker)["model_id"]
    ask = {"model_id": model_id, "target": "c", "seed": 2, "num_samples": 100,
           "alternative": [{"type": "hard", "node": "b", "value": 1.0}],
           "reference": [{"type": "hard", "node": "b", "value": 0.0}]}
    full = _result(worker, "effect", {**ask, "observed": _columns("abcde")})
    needed = _result(worker, "effect", {**ask, "observed": _columns("ad")})
    assert needed["effect"] == full["effect"]
    assert full["metadata"]["ignored_columns"] == {"observed": ["b", "c", "e"]}
    data = _invalid(worker, "effect", {**ask, "observed": _columns("ab")})
    assert data["field"] == "observed" and data["missing_in_traces"] == ["d"]


# -- interventional samples on observed rows -------------------------------------------------


@pytest.fixture(scope="module")
def model() -> FittedModel:
    """The worker's fit, made here: a seeded fit is the same model at any concurrency."""
    graph, columns, config = parse_fit_request(GRAPH, TRACES, CONFIG, Limits())
    return fit_model(graph, to_frame(columns), config, n_jobs=1)


INTERVENTIONS = {
    "shift-mid": [{"type": "soft", "node": "b", "transform": "shift", "param": 0.7}],
    "do-root": [{"type": "hard", "node": "a", "value": 1.0}],
    "scale-root": [{"type": "soft", "node": "d", "transform": "scale", "param": 2.0}],
}


def _as_dowhy(model: FittedModel, wire: list[dict[str, Any]]) -> dict[str, Any]:
    parsed = [Intervention(i["node"], i["type"], value=i.get("value"),
                           transform=i.get("transform"), param=i.get("param")) for i in wire]
    return {i.node: i.to_callable(model.kinds[i.node]) for i in parsed}


@pytest.mark.parametrize("name", list(INTERVENTIONS))
def test_interventional_samples_on_observed_rows_are_dowhys_seed_for_seed(
    worker: WorkerProcess, model: FittedModel, name: str
) -> None:
    model_id = _fit(worker)["model_id"]
    observed = pd.DataFrame(_columns("abcde", slice(0, 200)))
    result = _result(worker, "sample", {
        "model_id": model_id, "kind": "interventional", "interventions": INTERVENTIONS[name],
        "observed": observed.to_dict(orient="list"), "num_samples": 5000, "seed": 13,
    })
    gcm.util.general.set_random_seed(13)
    theirs = gcm.interventional_samples(
        model.scm, _as_dowhy(model, INTERVENTIONS[name]), observed_data=observed
    )
    assert result["metadata"]["num_samples"] == 200  # one per observed row, as DoWhy
    for node in NODES:
        np.testing.assert_allclose(result["samples"][node], theirs[node], rtol=1e-9, atol=1e-9,
                                   err_msg=node)
    reached = {"shift-mid": "bc", "do-root": "abc", "scale-root": "dce"}[name]
    for node in set(NODES) - set(reached):
        assert result["samples"][node] == observed[node].tolist(), node  # exactly as observed


def test_interventional_samples_on_observed_rows_need_only_the_columns_kept(
    worker: WorkerProcess,
) -> None:
    """shift(b): b and c are redrawn, so the rows need a, d and e only."""
    model_id = _fit(worker)["model_id"]
    ask = {"model_id": model_id, "kind": "interventional", "seed": 4,
           "interventions": INTERVENTIONS["shift-mid"]}
    full = _result(worker, "sample", {**ask, "observed": _columns("abcde")})
    kept = _result(worker, "sample", {**ask, "observed": {**_columns("ade"), "id": [0] * 120}})
    assert kept["samples"] == full["samples"]
    assert full["metadata"]["ignored_columns"] == {"observed": ["b", "c"]}
    assert kept["metadata"]["ignored_columns"] == {"observed": ["id"]}
    data = _invalid(worker, "sample", {**ask, "observed": _columns("ad")})
    assert data["field"] == "observed" and data["missing_in_traces"] == ["e"]


def test_rows_whose_every_node_is_redrawn_still_give_one_sample_per_row(
    worker: WorkerProcess,
) -> None:
    """do(a), do(d): every node is set or redrawn; the rows only say how many there are."""
    model_id = _fit(worker)["model_id"]
    result = _result(worker, "sample", {
        "model_id": model_id, "kind": "interventional", "seed": 1,
        "interventions": [{"type": "hard", "node": "a", "value": 1.0},
                          {"type": "hard", "node": "d", "value": 0.0}],
        "observed": {"id": [1, 2, 3, 4, 5], **_columns("a", slice(0, 5))}})
    assert result["metadata"]["num_samples"] == 5
    assert result["samples"]["a"] == [1.0] * 5 and result["samples"]["d"] == [0.0] * 5


def test_observed_rows_are_still_refused_for_observational_samples(
    worker: WorkerProcess,
) -> None:
    model_id = _fit(worker)["model_id"]
    data = _invalid(worker, "sample", {"model_id": model_id, "observed": _columns("abcde")})
    assert data["field"] == "observed"
