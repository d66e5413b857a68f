"""The worker's samplers (draws.py) and the one-pass effect against DoWhy's own functions.

Same fitted model on both sides. Counterfactuals are deterministic given the observed
rows, so they must equal ``gcm.counterfactual_samples``; an observational draw makes
DoWhy's calls in DoWhy's order, so a seed gives ``gcm.draw_samples``' very draw; the
effect draws a different random stream, so it is compared with
``gcm.average_causal_effect`` across seeds, within five standard errors. The last tests
send the same requests to a real worker process over its pipes.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import WorkerProcess
from dowhy import gcm
from scm_worker.checks import FitConfig, parse_fit_request
from scm_worker.engine import bootstrap, questions
from scm_worker.engine.draws import counterfactual_samples, interventional_samples
from scm_worker.engine.fitting import FittedModel, fit_model
from scm_worker.engine.frames import to_frame
from scm_worker.engine.interventions import Intervention
from scm_worker.limits import Limits

SEEDS = range(8)
FIT_SEED = 3


def _request() -> dict[str, Any]:
    """a → b → c ← d → e, non-linear in places; e is out of a's reach."""
    rng = np.random.default_rng(5)
    rows = 500
    a = rng.normal(size=rows)
    d = rng.normal(size=rows)
    b = 1.5 * a + rng.normal(scale=0.5, size=rows)
    c = np.tanh(b) + 0.8 * d**2 + rng.normal(scale=0.3, size=rows)
    e = np.sin(d) + rng.normal(scale=0.3, size=rows)
    traces = {name: column.tolist() for name, column in zip("abcde", (a, b, c, d, e), strict=True)}
    edges = [["a", "b"], ["b", "c"], ["d", "c"], ["d", "e"]]
    return {
        "graph": {"nodes": list("abcde"), "edges": edges},
        "traces": traces,
        "config": {"seed": FIT_SEED, "validate_r2": False},
    }


REQUEST = _request()


@pytest.fixture(scope="module")
def model() -> FittedModel:
    graph, columns, config = parse_fit_request(
        REQUEST["graph"], REQUEST["traces"], REQUEST["config"], Limits()
    )
    assert isinstance(config, FitConfig)
    return fit_model(graph, to_frame(columns), config, n_jobs=1)


@pytest.fixture(scope="module")
def observed() -> pd.DataFrame:
    return pd.DataFrame({n: REQUEST["traces"][n][:200] for n in "abcde"})


def _as_dowhy(model: FittedModel, interventions: list[Intervention]) -> dict[str, Any]:
    return {i.node: i.to_callable(model.kinds[i.node]) for i in interventions}


INTERVENTIONS = {
    "do-root": [Intervention("a", "hard", value=1.0)],
    "do-mid": [Intervention("b", "hard", value=-0.5)],
    "shift-mid": [Intervention("b", "soft", transform="shift", param=0.7)],
    "scale-root-and-do-other-root": [
        Intervention("a", "soft", transform="scale", param=2.0),
        Intervention("d", "hard", value=0.0),
    ],
}


@pytest.mark.parametrize("name", list(INTERVENTIONS))
def test_counterfactual_equals_dowhys(
    model: FittedModel, observed: pd.DataFrame, name: str
) -> None:
    interventions = INTERVENTIONS[name]
    ours = counterfactual_samples(model.scm, interventions, model.kinds, observed)
    theirs = gcm.counterfactual_samples(
        model.scm, _as_dowhy(model, interventions), observed_data=observed
    )
    assert list(ours.columns) == list(theirs.columns)
    for node in theirs.columns:
        np.testing.assert_allclose(
            ours[node].to_numpy(float), theirs[node].to_numpy(float), rtol=1e-12, atol=1e-12,
            err_msg=node,
        )


def test_counterfactual_keeps_what_the_intervention_cannot_reach(
    model: FittedModel, observed: pd.DataFrame
) -> None:
    ours = counterfactual_samples(model.scm, INTERVENTIONS["do-root"], model.kinds, observed)
    for node in ("d", "e"):
        assert (ours[node].to_numpy() == observed[node].to_numpy()).all(), node
    assert (ours["a"] == 1.0).all()
    assert not np.allclose(ours["c"], observed["c"])


def test_observational_draw_is_dowhys_seed_for_seed(model: FittedModel) -> None:
    gcm.util.general.set_random_seed(4)
    ours = interventional_samples(model.scm, [], model.kinds, 300)
    gcm.util.general.set_random_seed(4)
    theirs = gcm.draw_samples(model.scm, 300)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def _z(ours: list[float], theirs: list[float]) -> float:
    spread = np.sqrt(
        statistics.variance(ours) / len(ours) + statistics.variance(theirs) / len(theirs)
    )
    return abs(statistics.fmean(ours) - statistics.fmean(theirs)) / spread


@pytest.mark.parametrize("with_observed", [False, True], ids=["drawn", "observed-rows"])
def test_effect_agrees_with_average_causal_effect(
    model: FittedModel, observed: pd.DataFrame, with_observed: bool
) -> None:
    alternative, reference = [Intervention("a", "hard", value=1.0)], []
    rows = observed if with_observed else None
    ours, theirs = [], []
    for seed in SEEDS:
        gcm.util.general.set_random_seed(seed)
        ours.append(
            questions.effect(model, "c", alternative, reference, rows, 400)["effect"]
        )
        gcm.util.general.set_random_seed(seed)
        theirs.append(float(gcm.average_causal_effect(
            model.scm, "c", _as_dowhy(model, alternative), {}, observed_data=rows,
            num_samples_to_draw=None if with_observed else 400,
        )))
    assert _z(ours, theirs) < 5.0, (ours, theirs)


def test_effect_of_a_node_out_of_reach_is_zero(model: FittedModel) -> None:
    """Only the target's ancestors are drawn: e does not move c at all."""
    gcm.util.general.set_random_seed(1)
    alternative = [Intervention("e", "hard", value=3.0)]
    reference = [Intervention("e", "hard", value=-3.0)]
    result = questions.effect(model, "c", alternative, reference, None, 500)
    assert abs(result["effect"]) < 0.2  # two independent draws of c: sampling error only


def test_effect_interval_contains_its_point_and_a_seed_reproduces(model: FittedModel) -> None:
    """The recompute-only bootstrap (``refit: false``) in this process, seeded twice alike."""
    params = {"alternative": [Intervention("b", "hard", value=1.0)],
              "reference": [Intervention("b", "hard", value=0.0)], "observed": None,
              "num_samples": 300}
    job = bootstrap.Replicate(questions.effect, model, "c", params, refit=False)
    results = [
        bootstrap.summarise(bootstrap.replicates(job, 7, 20, n_jobs=1), {"effect": "interval"}, 0.9)
        for _ in range(2)
    ]
    assert results[0] == results[1]
    low, high = results[0]["interval"]
    assert low <= results[0]["effect"] <= high
    assert low < high


# -- through a real worker process -----------------------------------------------------


#: a fit with model selection on a loaded 2-core machine: a liveness bound, not a speed claim
REPLY_TIMEOUT = 180.0


def _result(worker: WorkerProcess, method: str, params: dict[str, Any]) -> Any:
    """The reply's result, past the progress notifications sent before it."""
    request_id = worker.next_id()
    worker.send({"jsonrpc": "2.0", "method": method, "id": request_id, "params": params})
    while True:
        reply = worker.read_json(timeout=REPLY_TIMEOUT)
        if reply.get("method") != "progress":
            assert reply.get("id") == request_id and "error" not in reply, reply
            return reply["result"]


def _fit(worker: WorkerProcess) -> str:
    return str(_result(worker, "fit", REQUEST)["model_id"])


def test_worker_counterfactual_sample_equals_dowhys_on_the_same_fit(
    worker: WorkerProcess, model: FittedModel, observed: pd.DataFrame
) -> None:
    model_id = _fit(worker)
    interventions = [{"type": "soft", "node": "b", "transform": "shift", "param": 0.7}]
    result = _result(worker, "sample", {
        "model_id": model_id, "kind": "counterfactual", "interventions": interventions,
        "observed": observed.to_dict(orient="list"), "return_samples": True,
    })
    theirs = gcm.counterfactual_samples(
        model.scm, _as_dowhy(model, INTERVENTIONS["shift-mid"]), observed_data=observed
    )
    for node in "abcde":
        np.testing.assert_allclose(result["samples"][node], theirs[node], rtol=1e-9, atol=1e-9)


def test_worker_effect_reports_its_interval_and_reproduces(worker: WorkerProcess) -> None:
    model_id = _fit(worker)
    params = {
        "model_id": model_id, "target": "c",
        "alternative": [{"type": "hard", "node": "a", "value": 1.0}],
        "reference": [{"type": "hard", "node": "a", "value": 0.0}],
        "confidence": 0.9, "num_samples": 300, "num_bootstrap": 20, "seed": 11,
    }
    first, second = _result(worker, "effect", params), _result(worker, "effect", params)
    assert first["effect"] == second["effect"] and first["interval"] == second["interval"]
    low, high = first["interval"]
    assert low <= first["effect"] <= high
    assert first["effect"] > 0  # c rises with b, b with a
