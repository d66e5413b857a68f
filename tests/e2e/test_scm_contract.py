"""The fit / evaluate / sample contract, end to end: 3.13 client, real 3.11 worker, real DoWhy.

Every lift-sys fixture with its expected outcome, interventional and counterfactual
answers checked against the structural equations that generated the traces, and every
bad-input class answered with its error while the same worker process keeps serving.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from scm_client import (
    InsufficientData,
    InvalidParams,
    LimitExceeded,
    ModelNotFound,
    UnsupportedQuery,
    ValidationFailed,
    Worker,
)
from support.worker_env import ONE_THREAD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def gcm_worker(tmp_path_factory: pytest.TempPathFactory) -> Worker:
    store = tmp_path_factory.mktemp("store")
    worker = Worker(worker_args=("--max-num-samples", "50000", "--store", str(store), *ONE_THREAD))
    worker.start()
    yield worker
    worker.close()


def fit_fixture(worker: Worker, name: str, **config: Any):
    request = load(name)
    return worker.fit(request["graph"], request["traces"], **{**request["config"], "seed": 7, **config})


def chain_rows(n: int, seed: int) -> dict[str, list[float]]:
    """Fresh rows from the linear chain's own equations: Y = 2X + ε, Z = 3Y + ε."""
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ys = [2 * x + rng.gauss(0, 0.1) for x in xs]
    zs = [3 * y + rng.gauss(0, 0.1) for y in ys]
    return {"X": xs, "Y": ys, "Z": zs}


# -- every fixture, its expected outcome --------------------------------------------


def test_linear_chain_recovers_coefficients(gcm_worker: Worker) -> None:
    """Coefficients need linear mechanisms: on seed 7 DoWhy's own choice is linear for both
    (since node seeds derive from node names; under the old topological-place seeds Y's was
    the polynomial by a hair, and linear_tolerance's override is tested in test_model_choice)."""
    result = fit_fixture(gcm_worker, "linear_chain")
    assert result.passed and result.warnings == [] and result.status == "success"
    assert "chosen_by" not in result.mechanism("Y") and "chosen_by" not in result.mechanism("Z")
    assert result.mechanism("X") == {"type": "empirical"}
    assert result.coefficients("Y")["X"] == pytest.approx(2.0, abs=0.05)
    assert result.coefficients("Z")["Y"] == pytest.approx(3.0, abs=0.05)
    assert result.metadata["num_train"] + result.metadata["num_val"] == result.metadata["num_samples"] == 1000
    assert result.metadata["num_val"] == 200
    assert set(result.metadata["node_fit_ms"]) == {"Y", "Z"}  # the non-root nodes' task times


def test_multi_parent_recovers_both_coefficients(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "multi_parent")
    coefficients = result.coefficients("Z")
    assert coefficients["X"] == pytest.approx(1.5, abs=0.05)
    assert coefficients["Y"] == pytest.approx(2.5, abs=0.05)


def test_quadratic_selects_nonlinear_mechanism(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "nonlinear")
    assert result.mechanism("Y")["type"] == "nonlinear"
    assert result.r2_scores["Y"] > 0.8


def test_noisy_data_fails_validation_but_keeps_model(gcm_worker: Worker) -> None:
    with pytest.raises(ValidationFailed) as caught:
        fit_fixture(gcm_worker, "noisy_data")
    error = caught.value
    assert error.mean_r2 < 0.7 and error.threshold == 0.7
    assert error.failed_nodes == ["Y"]
    sampled = gcm_worker.sample(error.model_id, num_samples=10, seed=1)
    assert len(sampled.samples["Y"]) == 10


def test_noisy_data_without_validation_reports_not_passed(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "noisy_data", validate_r2=False)
    assert result.passed is False
    assert result.validation["failed_nodes"] == ["Y"]


def test_fifty_rows_is_insufficient(gcm_worker: Worker) -> None:
    with pytest.raises(InsufficientData) as caught:
        fit_fixture(gcm_worker, "insufficient_data")
    assert (caught.value.num_samples, caught.value.min_samples) == (50, 100)


def test_perfect_correlation_warns_of_leakage(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "perfect_correlation")
    assert result.status == "warning"
    assert [(w["code"], w["node"]) for w in result.warnings] == [("possible_leakage", "Y")]


def test_deterministic_code_traces_fit_with_r2_one(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "code_execution")
    assert result.r2_scores["output"] == pytest.approx(1.0, abs=1e-9)
    assert result.coefficients("output")["input_x"] == pytest.approx(2.0, abs=1e-6)


def test_validation_function_fits_with_its_zero_one_node(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "validation_function")
    assert result.passed
    assert set(result.scm["mechanisms"]) == {"input", "is_valid", "output"}
    assert result.mechanism("is_valid")["parents"] == ["input"]


def test_complex_dag_fits_every_node(gcm_worker: Worker) -> None:
    result = fit_fixture(gcm_worker, "complex_dag")
    assert result.passed and set(result.r2_scores) == {"B", "C", "D"}
    assert sorted(result.mechanism("D")["parents"]) == ["B", "C"]


# -- categorical and boolean nodes ----------------------------------------------------


def boolean_validation_traces() -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """validation_function with is_valid = input > 2.5 as real booleans (both classes)."""
    request = load("validation_function")
    traces = dict(request["traces"])
    traces["is_valid"] = [x > 2.5 for x in traces["input"]]
    return request["graph"], traces


def test_boolean_node_gets_a_classifier_and_booleans_come_back(gcm_worker: Worker) -> None:
    graph, traces = boolean_validation_traces()
    result = gcm_worker.fit(graph, traces, seed=3)
    mechanism = result.mechanism("is_valid")
    assert mechanism["type"] == "classifier" and mechanism["classes"] == [False, True]
    assert result.validation["accuracy"]["is_valid"] > 0.95
    sampled = gcm_worker.sample(result, "interventional", [{"type": "hard", "node": "input", "value": 4.5}],
                                num_samples=200, seed=2)
    assert set(sampled.samples["is_valid"]) == {True}


def test_counterfactual_names_the_non_invertible_node(gcm_worker: Worker) -> None:
    graph, traces = boolean_validation_traces()
    result = gcm_worker.fit(graph, traces, seed=3)
    observed = {k: v[:3] for k, v in traces.items()}
    with pytest.raises(UnsupportedQuery) as caught:
        gcm_worker.sample(result, "counterfactual", [{"type": "hard", "node": "input", "value": 1.0}],
                          observed=observed)
    assert caught.value.node == "is_valid"
    assert "invertible" in caught.value.message


def test_string_categories_fit_and_intervene(gcm_worker: Worker) -> None:
    rng = random.Random(5)
    colour = [rng.choice(["red", "blue"]) for _ in range(400)]
    size = [(3.0 if c == "red" else -3.0) + rng.gauss(0, 0.2) for c in colour]
    result = gcm_worker.fit({"nodes": ["colour", "size"], "edges": [["colour", "size"]]},
                            {"colour": colour, "size": size}, seed=1)
    assert result.passed
    sampled = gcm_worker.sample(result, "interventional", [{"type": "hard", "node": "colour", "value": "red"}],
                                num_samples=500, seed=1, return_samples=False)
    assert sampled.mean("size") == pytest.approx(3.0, abs=0.2)
    assert sampled.samples is None


# -- sampling answers match the generating equations -----------------------------------


def test_do_x_five_on_chain_gives_y_ten_z_thirty(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    sampled = gcm_worker.sample(model, "interventional", [{"type": "hard", "node": "X", "value": 5}],
                                num_samples=2000, seed=11)
    assert sampled.mean("Y") == pytest.approx(10.0, abs=0.2)
    assert sampled.mean("Z") == pytest.approx(30.0, abs=0.5)
    assert set(sampled.statistics["Z"]) >= {"mean", "std", "q05", "q50", "q95", "min", "max"}


def test_soft_shift_moves_downstream_means(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    base = gcm_worker.sample(model, num_samples=5000, seed=4, return_samples=False)
    shifted = gcm_worker.sample(model, "interventional",
                                [{"type": "soft", "node": "X", "transform": "shift", "param": 1.0}],
                                num_samples=5000, seed=4, return_samples=False)
    assert shifted.mean("Y") - base.mean("Y") == pytest.approx(2.0, abs=0.1)


def test_counterfactual_on_observed_rows_follows_the_equations(gcm_worker: Worker) -> None:
    request = load("linear_chain")
    model = fit_fixture(gcm_worker, "linear_chain")
    observed = {k: v[:20] for k, v in request["traces"].items()}
    sampled = gcm_worker.sample(model, "counterfactual", [{"type": "hard", "node": "X", "value": 5}],
                                observed=observed, seed=1)
    assert sampled.samples["X"] == [5.0] * 20
    for x, y, y_cf in zip(observed["X"], observed["Y"], sampled.samples["Y"], strict=True):
        assert y_cf == pytest.approx(y + 2.0 * (5 - x), abs=0.05)


def test_query_nodes_limit_the_answer(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    sampled = gcm_worker.sample(model, num_samples=50, query_nodes=["Z"], seed=1)
    assert set(sampled.samples) == set(sampled.statistics) == {"Z"}


# -- evaluate, reproducibility, the model table -----------------------------------------


def test_evaluate_on_fresh_rows(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    report = gcm_worker.evaluate(model, chain_rows(300, seed=99))
    assert report.passed and report.failed_nodes == []
    assert report.r2_scores["Z"] > 0.99
    assert set(report.nodes["Y"]) == {"r2", "mse", "nmse"}
    assert report.nodes["Y"]["mse"] == pytest.approx(0.01, abs=0.01)


def test_evaluate_on_rows_from_another_process_fails(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    rows = chain_rows(300, seed=5)
    rows["Z"] = [-z for z in rows["Z"]]
    report = gcm_worker.evaluate(model, rows)
    assert report.passed is False and report.failed_nodes == ["Z"]
    assert report.r2_scores["Z"] < 0


def test_seeded_fit_and_sample_are_reproducible(gcm_worker: Worker) -> None:
    first = fit_fixture(gcm_worker, "complex_dag", seed=123, cache=False)
    second = fit_fixture(gcm_worker, "complex_dag", seed=123, cache=False)
    assert first.model_id != second.model_id
    assert first.validation == second.validation
    assert first.scm == second.scm
    do = [{"type": "hard", "node": "A", "value": 1.0}]
    draw_a = gcm_worker.sample(first, "interventional", do, num_samples=100, seed=9)
    draw_b = gcm_worker.sample(second, "interventional", do, num_samples=100, seed=9)
    assert draw_a.samples == draw_b.samples
    assert first.metadata["seed"] == 123


def test_models_list_and_drop(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "code_execution")
    listed = {m["model_id"]: m for m in gcm_worker.models()}
    assert listed[model.model_id]["nodes"] == ["input_x", "output"]
    assert listed[model.model_id]["num_samples"] == 100
    gcm_worker.drop(model)
    with pytest.raises(ModelNotFound) as caught:
        gcm_worker.sample(model, num_samples=5)
    assert caught.value.model_id == model.model_id


# -- bad input: a structured error naming the field, and the worker keeps serving ------

CHAIN = load("linear_chain")
BAD_FITS = [
    ({"nodes": ["X", "Y"], "edges": [["X", "Y"], ["Y", "X"]]}, {"X": [1.0] * 200, "Y": [1.0] * 200}, {}, "graph.edges"),
    ({"nodes": ["X", "Y"], "edges": [["X", "X"]]}, {"X": [1.0] * 200, "Y": [1.0] * 200}, {}, "graph.edges[0]"),
    ({"nodes": ["X", "Y"], "edges": [["X", "W"]]}, {"X": [1.0] * 200, "Y": [1.0] * 200}, {}, "graph.edges[0]"),
    (CHAIN["graph"], {"X": [1.0] * 200, "Y": [1.0] * 200}, {}, "traces"),
    (CHAIN["graph"], {"X": [1.0] * 200, "Y": [1.0] * 200, "Z": [1.0] * 199}, {}, "traces"),
    (CHAIN["graph"], {"X": [1.0] * 200, "Y": ["a"] + [1.0] * 199, "Z": [1.0] * 200}, {}, "traces.Y"),
    (CHAIN["graph"], {"X": [1.0] * 200, "Y": [[1]] * 200, "Z": [1.0] * 200}, {}, "traces.Y[0]"),
    (CHAIN["graph"], CHAIN["traces"], {"quality": "EXCELLENT"}, "config.quality"),
    (CHAIN["graph"], CHAIN["traces"], {"test_size": 1.5}, "config.test_size"),
    (CHAIN["graph"], CHAIN["traces"], {"colour": "red"}, "config.colour"),
    (CHAIN["graph"], {**CHAIN["traces"], "X": [None] + CHAIN["traces"]["X"][1:]}, {"missing": "error"}, "traces"),
]


@pytest.mark.parametrize(("graph", "traces", "config", "field"), BAD_FITS,
                         ids=[case[3] + f"-{i}" for i, case in enumerate(BAD_FITS)])
def test_bad_fit_input_names_the_field_and_worker_keeps_serving(
    gcm_worker: Worker, graph: Any, traces: Any, config: dict[str, Any], field: str
) -> None:
    pid = gcm_worker.pid
    with pytest.raises(InvalidParams) as caught:
        gcm_worker.fit(graph, traces, **config)
    assert caught.value.field == field
    assert field in caught.value.message
    assert gcm_worker.ping() == "pong" and gcm_worker.pid == pid


def test_column_mismatch_says_which_side_misses_what(gcm_worker: Worker) -> None:
    with pytest.raises(InvalidParams) as caught:
        gcm_worker.fit(CHAIN["graph"], {"X": [1.0] * 200, "Y": [1.0] * 200, "W": [1.0] * 200})
    assert caught.value.data["missing_in_traces"] == ["Z"]
    assert caught.value.data["missing_in_graph"] == ["W"]


def test_missing_rows_are_dropped_and_reported(gcm_worker: Worker) -> None:
    traces = {k: list(v) for k, v in CHAIN["traces"].items()}
    traces["Y"][:3] = [None, None, None]
    result = gcm_worker.fit(CHAIN["graph"], traces, seed=1)
    assert result.metadata["num_samples"] == 997
    assert [w["code"] for w in result.warnings] == ["rows_dropped"]


BAD_SAMPLES = [
    ({"kind": "interventional", "interventions": [{"type": "hard", "node": "Q", "value": 1}]}, "interventions[0].node"),
    ({"kind": "interventional", "interventions": [{"type": "soft", "node": "X", "transform": "exp", "param": 1}]},
     "interventions[0].transform"),
    ({"kind": "interventional", "interventions": [{"type": "hard", "node": "X", "value": "five"}]},
     "interventions[0].value"),
    ({"kind": "interventional", "interventions": [{"type": "magic", "node": "X"}]}, "interventions[0].type"),
    ({"kind": "hypothetical"}, "kind"),
    ({"kind": "interventional", "interventions": []}, "interventions"),
    ({"kind": "counterfactual", "interventions": [{"type": "hard", "node": "X", "value": 1}]}, "observed"),
    ({"query_nodes": ["nope"]}, "query_nodes[0]"),
    ({"num_samples": 0}, "num_samples"),
]


@pytest.mark.parametrize(("params", "field"), BAD_SAMPLES, ids=[case[1] for case in BAD_SAMPLES])
def test_bad_sample_input_names_the_field(gcm_worker: Worker, params: dict[str, Any], field: str) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    with pytest.raises(InvalidParams) as caught:
        gcm_worker.call("sample", {"model_id": model.model_id, **params})
    assert caught.value.field == field
    assert gcm_worker.ping() == "pong"


def test_num_samples_over_the_limit_is_refused(gcm_worker: Worker) -> None:
    model = fit_fixture(gcm_worker, "linear_chain")
    with pytest.raises(LimitExceeded):
        gcm_worker.sample(model, num_samples=50001)


def test_unknown_and_malformed_model_ids(gcm_worker: Worker) -> None:
    with pytest.raises(ModelNotFound):
        gcm_worker.sample("m-0123456789abcdef")
    with pytest.raises(InvalidParams) as caught:
        gcm_worker.sample("../../etc/passwd")
    assert caught.value.field == "model_id"
