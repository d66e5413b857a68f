"""``evaluate`` and ``falsify`` on the real worker process, against DoWhy's own functions.

The falsification data: X1, X2, X3 independent roots, Y = X1 + X2 + X3 + ε, Z = Y + ε.
The true graph implies X1 ⊥ X2 ⊥ X3 and Z ⊥ Xi | Y, all of which hold; reversing X1 → Y
makes it imply X1 ⊥ X2, X3 | Y, which conditioning on a collider breaks. With all 120
permutations tested (so none is drawn at random) DoWhy rejects the reversed graph and not
the true one: for the reversed graph 12 of 120 relabelings (p = 0.1) do as well and 4 lie
in its equivalence class (0.033), either side of the 0.05 level.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from dowhy.gcm.ml import create_linear_regressor, create_polynom_regressor
from dowhy.gcm.model_evaluation import EvaluateCausalModelConfig

if TYPE_CHECKING:
    from conftest import WorkerProcess

#: a falsification or a baseline comparison takes seconds to a minute on a loaded machine
SLOW_REPLY = 600.0

TRUE_EDGES = [["X1", "Y"], ["X2", "Y"], ["X3", "Y"], ["Y", "Z"]]
REVERSED_EDGES = [["Y", "X1"], ["X2", "Y"], ["X3", "Y"], ["Y", "Z"]]


def collider_rows(n: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = (rng.normal(size=n) for _ in range(3))
    y = x1 + x2 + x3 + 0.3 * rng.normal(size=n)
    z = y + 0.5 * rng.normal(size=n)
    return {"X1": x1.tolist(), "X2": x2.tolist(), "X3": x3.tolist(), "Y": y.tolist(), "Z": z.tolist()}


def chain_rows(n: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 2 * x + rng.normal(scale=0.5, size=n)
    z = y - 1 + rng.normal(scale=0.5, size=n)
    return {"X": x.tolist(), "Y": y.tolist(), "Z": z.tolist()}


CHAIN = {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}


def slow(worker: WorkerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One request whose reply may take long: the reply object."""
    request_id = worker.next_id()
    worker.send({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id})
    while True:
        reply = worker.read_json(timeout=SLOW_REPLY)
        if reply.get("id") == request_id:
            return reply  # type: ignore[no-any-return]
        assert reply.get("method") == "progress", reply


def result_of(worker: WorkerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = slow(worker, method, params)
    assert "error" not in reply, reply
    return reply["result"]  # type: ignore[no-any-return]


def falsify(worker: WorkerProcess, edges: list[list[str]], **params: Any) -> dict[str, Any]:
    graph = {"nodes": ["X1", "X2", "X3", "Y", "Z"], "edges": edges}
    return result_of(worker, "falsify", {"graph": graph, "traces": collider_rows(400, seed=1),
                                         "seed": 1, **params})


# -- falsify ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def falsified() -> dict[str, dict[str, Any]]:
    """Falsifications already run in this module, by graph: the reversed-edge graph's (most
    of a minute of kernel tests) is read by two tests and run once."""
    return {}


def falsify_reversed(worker: WorkerProcess, falsified: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if "reversed" not in falsified:
        falsified["reversed"] = falsify(worker, REVERSED_EDGES, max_permutations=200,
                                        significance_level=0.05)
    return falsified["reversed"]


def test_falsify_rejects_a_graph_with_a_reversed_edge(worker: WorkerProcess,
                                                      falsified: dict[str, dict[str, Any]]) -> None:
    result = falsify_reversed(worker, falsified)
    assert result["permutations"] == math.factorial(5) and result["max_permutations"] == 200
    assert result["falsifiable"] is True and result["falsified"] is True
    violated = {(t["node"], t["non_descendant"]) for t in result["tests"] if t["violated"]}
    assert violated >= {("X1", "X2"), ("X1", "X3")}  # the collider Y conditioned on
    assert result["local_markov"]["violations"] == len(violated)
    assert len(result["local_markov"]["permutation_violations"]) == result["permutations"]
    assert result["p_value"] > 0.05 > result["equivalence_class"]["p_value"]


def test_falsify_does_not_reject_the_true_graph(worker: WorkerProcess,
                                               falsified: dict[str, dict[str, Any]]) -> None:
    result = falsify(worker, TRUE_EDGES, max_permutations=200, significance_level=0.05)
    assert result["falsified"] is False
    reversed_ = falsify_reversed(worker, falsified)
    assert result["local_markov"]["violations"] < reversed_["local_markov"]["violations"]
    assert result["p_value"] < reversed_["p_value"]  # fewer relabelings do as well as the truth


@pytest.mark.parametrize(("asked", "ran"), [(50, 6), (1000, 6), (None, 6), (4, 4)])
def test_falsify_runs_at_most_the_graphs_permutations(worker: WorkerProcess, asked: int | None,
                                                     ran: int) -> None:
    """A 3-node graph has 3! = 6 permutations: asking for more runs each once."""
    result = result_of(worker, "falsify", {"graph": CHAIN, "traces": chain_rows(200, seed=2),
                                           "max_permutations": asked, "seed": 4})
    assert result["permutations"] == ran
    assert len(result["local_markov"]["permutation_fractions"]) == ran
    assert result["max_permutations"] == (20 if asked is None else asked)  # DoWhy's 1 / 0.05


def test_evaluate_reports_the_permutations_actually_run(worker: WorkerProcess) -> None:
    model_id = result_of(worker, "fit", {"graph": CHAIN, "traces": chain_rows(300, seed=3),
                                         "config": {"seed": 1}})["model_id"]
    result = result_of(worker, "evaluate", {
        "model_id": model_id, "traces": chain_rows(150, seed=4), "falsify_graph": True,
        "mechanisms": False, "overall_kl_divergence": False, "seed": 2})
    assert result["falsification"]["permutations"] == 6
    assert result["falsification"]["max_permutations"] == 50
    assert result["falsification"]["significance_level"] == 0.2  # evaluate_causal_model's


@pytest.mark.parametrize(("params", "code", "field"), [
    ({"graph": {"nodes": ["X", "Y"], "edges": [["X", "Q"]]}}, -32602, "graph.edges[0]"),
    ({"traces": {"X": [1.0, 2.0], "Y": [1.0, 2.0]}}, -32602, "traces"),
    ({"traces": {"X": [1.0, "a"], "Y": [1.0, 2.0], "Z": [1.0, 2.0]}}, -32602, "traces.X"),  # mixed kinds
    ({"max_permutations": 0}, -32602, "max_permutations"),
    ({"max_permutations": 1001}, -32004, "max_permutations"),
    ({"significance_level": 1.5}, -32602, "significance_level"),
    ({"seed": -1}, -32602, "seed"),
    ({"traces": {"X": [1.0], "Y": [2.0], "Z": [3.0]}}, -32002, None),
])
def test_falsify_refuses_bad_input_naming_the_field(worker: WorkerProcess, params: dict[str, Any],
                                                   code: int, field: str | None) -> None:
    reply = worker.call("falsify", {"graph": CHAIN, "traces": chain_rows(20, seed=5), **params})
    assert reply["error"]["code"] == code, reply
    if field is not None:
        assert reply["error"]["data"]["field"] == field


def test_evaluate_refuses_a_bad_significance_level(worker: WorkerProcess) -> None:
    reply = worker.call("evaluate", {"model_id": "m-0123456789abcdef", "traces": {},
                                     "falsify_graph_significance_level": 0})
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == "falsify_graph_significance_level"
    assert "between 0 and 1" in reply["error"]["data"]["reason"]  # a param, checked as one


# -- evaluate against gcm.evaluate_causal_model ------------------------------------------


#: the worker's fit summary's model name → DoWhy's factory of that regressor
REGRESSORS = {"LinearRegression": create_linear_regressor,
              "PolynomialFeatures+LinearRegression": create_polynom_regressor}


def dowhy_model(rows: pd.DataFrame, models: dict[str, str]) -> gcm.InvertibleStructuralCausalModel:
    """The worker's model of CHAIN on ``rows``, built and fitted by DoWhy in this process:
    an empirical root and additive-noise nodes with the regressors the worker chose,
    fitted on every row as the worker's stored model is."""
    scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph([("X", "Y"), ("Y", "Z")]))
    scm.set_causal_mechanism("X", gcm.EmpiricalDistribution())
    for node in ("Y", "Z"):
        scm.set_causal_mechanism(node, gcm.AdditiveNoiseModel(REGRESSORS[models[node]]()))
    gcm.fit(scm, rows)
    return scm


def chosen_models(fit: dict[str, Any]) -> dict[str, str]:
    return {node: fit["scm"]["mechanisms"][node]["model"] for node in ("Y", "Z")}


def dowhy_part(scm: gcm.InvertibleStructuralCausalModel, rows: pd.DataFrame, flag: str) -> Any:
    """``gcm.evaluate_causal_model`` with one part on, seeded 7, in this process."""
    np.random.seed(7)
    random.seed(7)
    flags = ("evaluate_causal_mechanisms", "evaluate_invertibility_assumptions",
             "evaluate_overall_kl_divergence", "evaluate_causal_structure")
    return gcm.evaluate_causal_model(scm, rows, compare_mechanism_baselines=True,
                                     config=EvaluateCausalModelConfig(n_jobs=1),
                                     **{name: name == flag for name in flags})


def test_evaluate_reports_what_dowhys_evaluate_causal_model_reports(worker: WorkerProcess) -> None:
    """Every part, on the same model, rows and seed: DoWhy's numbers, field for field
    (each part is seeded on its own, so it does not depend on the worker's processes)."""
    traces = chain_rows(120, seed=6)
    fit = result_of(worker, "fit", {"graph": CHAIN, "traces": traces, "config": {"seed": 1}})
    assert set(chosen_models(fit).values()) <= set(REGRESSORS)
    result = result_of(worker, "evaluate", {
        "model_id": fit["model_id"], "traces": traces, "seed": 7, "mechanisms": True,
        "compare_mechanism_baselines": True, "overall_kl_divergence": True, "invertibility": True,
        "falsify_graph": True})
    rows = pd.DataFrame(traces)
    scm = dowhy_model(rows, chosen_models(fit))
    performances = dowhy_part(scm, rows, "evaluate_causal_mechanisms").mechanism_performances
    overall_kl = dowhy_part(scm, rows, "evaluate_overall_kl_divergence").overall_kl_divergence
    assumptions = dowhy_part(scm, rows, "evaluate_invertibility_assumptions").pnl_assumptions
    falsification = dowhy_part(scm, rows, "evaluate_causal_structure").graph_falsification

    for node, performance in performances.items():
        got = result["mechanisms"][node]
        assert got["root"] is performance.is_root
        for key in ("crps", "kl_divergence", "mse", "nmse", "r2", "f1"):
            value = getattr(performance, key)
            assert got[key] == (None if value is None else pytest.approx(value, rel=1e-6)), (node, key)
        if not performance.is_root:
            assert got["baselines"] == {
                "total": performance.total_number_baselines,
                "significantly_better": performance.count_better_performance,
                "best_model": performance.best_baseline_model,
                "best_crps": pytest.approx(performance.best_baseline_performance, rel=1e-6),
            }
    assert result["overall_kl_divergence"] == pytest.approx(overall_kl, rel=1e-6)
    assert result["invertibility"] == {
        str(node): {"p_value": pytest.approx(p, rel=1e-6), "rejected": bool(rejected),
                    "significance_level": level}
        for node, (p, rejected, level) in assumptions.items()}
    assert result["falsification"]["falsified"] is falsification.falsified
    assert result["falsification"]["p_value"] == pytest.approx(
        falsification.summary[gcm.falsify.FalsifyConst.VALIDATE_LMC][gcm.falsify.FalsifyConst.P_VALUE])
    assert result["falsification"]["permutations"] == 6
    assert result["metadata"]["seed"] == 7


def test_evaluate_scores_the_stored_model_as_dowhy_defines_them(worker: WorkerProcess) -> None:
    """``nodes``: the zero-noise prediction's R², MSE and DoWhy's NMSE (RMSE / std)."""
    traces = chain_rows(200, seed=8)
    fit = result_of(worker, "fit", {"graph": CHAIN, "traces": traces, "config": {"seed": 1}})
    result = result_of(worker, "evaluate", {"model_id": fit["model_id"], "traces": traces,
                                            "mechanisms": False, "overall_kl_divergence": False})
    assert "mechanisms" not in result and "overall_kl_divergence" not in result
    rows = pd.DataFrame(traces)
    scm = dowhy_model(rows, chosen_models(fit))
    for node, parent in (("Y", "X"), ("Z", "Y")):
        predicted = scm.causal_mechanism(node).evaluate(rows[[parent]].to_numpy(), np.zeros(len(rows)))
        actual = rows[node].to_numpy()
        mse = float(np.mean((actual - np.ravel(predicted)) ** 2))
        assert result["nodes"][node]["mse"] == pytest.approx(mse, rel=1e-9)
        assert result["nodes"][node]["nmse"] == pytest.approx(math.sqrt(mse) / np.std(actual), rel=1e-9)


def test_evaluate_runs_dowhys_mechanism_folds_and_kl_by_default(worker: WorkerProcess) -> None:
    traces = chain_rows(100, seed=9)
    model_id = result_of(worker, "fit", {"graph": CHAIN, "traces": traces,
                                         "config": {"seed": 1}})["model_id"]
    result = result_of(worker, "evaluate", {"model_id": model_id, "traces": traces, "seed": 1})
    assert set(result["mechanisms"]) == {"X", "Y", "Z"}
    assert result["mechanisms"]["X"]["crps"] is None and result["mechanisms"]["X"]["kl_divergence"] >= 0
    assert 0 < result["mechanisms"]["Y"]["crps"] < 1 and "baselines" not in result["mechanisms"]["Y"]
    assert result["overall_kl_divergence"] >= 0
    assert "invertibility" not in result and "falsification" not in result
    few = worker.call("evaluate", {"model_id": model_id, "traces": {k: v[:4] for k, v in traces.items()}})
    assert few["error"]["code"] == -32002 and few["error"]["data"]["min_samples"] == 5
