"""Causal questions on generated data with known structure, through the real worker.

Data: W, X roots; Y = 2X + 0.3W + ε; Z = 3Y + ε. So do(X=1) − do(X=0) moves Z by 6,
X is a much stronger parent of Y than W, an outlier injected at X is X's fault, and a
shift injected into Z's mechanism is Z's.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from scm_client import InvalidParams, LimitExceeded, UnsupportedQuery, Worker
from support.worker_env import ONE_THREAD

GRAPH = {"nodes": ["X", "W", "Y", "Z"], "edges": [["X", "Y"], ["W", "Y"], ["Y", "Z"]]}


def generate(n: int, seed: int, z_shift: float = 0.0) -> dict[str, list[float]]:
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ws = [rng.gauss(0, 1) for _ in range(n)]
    ys = [2 * x + 0.3 * w + rng.gauss(0, 0.1) for x, w in zip(xs, ws, strict=True)]
    zs = [3 * y + z_shift + rng.gauss(0, 0.1) for y in ys]
    return {"X": xs, "W": ws, "Y": ys, "Z": zs}


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Worker:
    with Worker(worker_args=("--store", str(tmp_path_factory.mktemp("store")), *ONE_THREAD)) as worker:
        yield worker


@pytest.fixture(scope="module")
def model(worker: Worker) -> Any:
    return worker.fit(GRAPH, generate(1000, seed=1), seed=1)


def do(node: str, value: Any) -> list[dict[str, Any]]:
    return [{"type": "hard", "node": node, "value": value}]


def test_effect_on_chain_is_the_product_of_coefficients(worker: Worker, model: Any) -> None:
    result = worker.effect(model, "Z", do("X", 1.0), do("X", 0.0), confidence=0.95, seed=3)
    assert result.effect == pytest.approx(6.0, rel=0.05)
    low, high = result.interval
    assert low <= result.effect <= high


def test_effect_on_observed_rows(worker: Worker, model: Any) -> None:
    observed = {k: v[:50] for k, v in generate(50, seed=9).items()}
    result = worker.effect(model, "Y", do("X", 1.0), do("X", 0.0), observed=observed, seed=3)
    assert result.effect == pytest.approx(2.0, rel=0.05)


def test_effect_is_reproducible_with_a_seed(worker: Worker, model: Any) -> None:
    first = worker.effect(model, "Z", do("X", 1.0), do("X", 0.0), seed=11, num_samples=500)
    second = worker.effect(model, "Z", do("X", 1.0), do("X", 0.0), seed=11, num_samples=500)
    assert first.effect == second.effect


def test_arrow_strength_ranks_strong_parent_first(worker: Worker, model: Any) -> None:
    strengths = worker.arrow_strength(model, "Y", seed=2)
    assert set(strengths.values) == {"X", "W"}
    assert [node for node, _ in strengths.ranked()] == ["X", "W"]


def test_intrinsic_influence_on_z_is_mostly_x(worker: Worker, model: Any) -> None:
    influence = worker.influence(model, "Z", seed=2, num_training_samples=2000)
    assert influence.ranked()[0][0] == "X"


def test_outlier_at_root_is_attributed_to_that_root(worker: Worker, model: Any) -> None:
    rows = {"X": [5.0], "W": [0.0], "Y": [10.0], "Z": [30.0]}
    result = worker.anomaly(model, "Z", rows, seed=4)
    assert result.main_cause(0) == "X"
    assert result.scores["X"][0] > result.scores["W"][0]


def test_mechanism_change_is_attributed_to_the_changed_node(worker: Worker, model: Any) -> None:
    old, new = generate(600, seed=5), generate(600, seed=6, z_shift=2.0)
    change = worker.distribution_change(model, "Z", old, new, seed=1)
    assert change.ranked()[0][0] == "Z"
    assert change.values["Z"] == pytest.approx(2.0, abs=0.3)


def test_each_answer_carries_its_intervals_through_the_typed_api(worker: Worker, model: Any) -> None:
    """``confidence``: medians with an interval each (refit by default, or recompute only)."""
    strengths = worker.arrow_strength(model, "Y", seed=2, confidence=0.9, num_bootstrap=4)
    assert strengths.intervals is not None and set(strengths.intervals) == {"X", "W"}
    assert all(low <= strengths.values[node] <= high
               for node, (low, high) in strengths.intervals.items())
    assert strengths.raw["metadata"]["refit"] is True
    rows = {"X": [5.0, 0.0], "W": [0.0, 0.0], "Y": [10.0, 0.0], "Z": [30.0, 0.0]}
    anomaly = worker.anomaly(model, "Z", rows, seed=4, confidence=0.9, num_bootstrap=4, refit=False)
    assert anomaly.raw["metadata"]["refit"] is False
    assert anomaly.intervals is not None and anomaly.score_intervals is not None
    low, high = anomaly.intervals["X"][0]
    assert low <= anomaly.attributions["X"][0] <= high and len(anomaly.score_intervals["X"]) == 2
    plain = worker.influence(model, "Z", seed=2, num_training_samples=500)
    assert plain.intervals is None and "confidence" not in plain.raw["metadata"]


def categorical_model(worker: Worker) -> Any:
    rng = random.Random(3)
    xs = [rng.gauss(0, 1) for _ in range(600)]
    colour = ["red" if x + rng.gauss(0, 0.3) > 0 else "blue" for x in xs]
    size = [(2.0 if c == "red" else -2.0) + rng.gauss(0, 0.2) for c in colour]
    graph = {"nodes": ["x", "colour", "size"], "edges": [["x", "colour"], ["colour", "size"]]}
    return worker.fit(graph, {"x": xs, "colour": colour, "size": size}, seed=1)


def test_effect_on_two_class_target_is_a_probability_difference(worker: Worker) -> None:
    model = categorical_model(worker)
    result = worker.effect(model, "colour", do("x", 2.0), do("x", -2.0), seed=1, num_samples=1000)
    assert result.raw["positive_class"] == "red"
    assert result.effect > 0.8


def test_a_two_class_effect_interval_refits_the_classifier(worker: Worker) -> None:
    model = categorical_model(worker)
    result = worker.effect(model, "colour", do("x", 2.0), do("x", -2.0), seed=1, num_samples=1000,
                           confidence=0.9, num_bootstrap=4)
    assert result.interval is not None
    low, high = result.interval
    assert 0.8 < low <= result.effect <= high <= 1.0


def test_two_class_effect_on_observed_rows_uses_those_rows(worker: Worker) -> None:
    # Shifting x by +0.5 barely changes P(red) on rows far from the class boundary (x = 3)
    # and changes it a lot on rows at it (x = -0.25). Before the fix a two-class target
    # ignored the observed rows and both answers were the same.
    model = categorical_model(worker)
    far = {"x": [3.0] * 50, "colour": ["red"] * 50, "size": [2.0] * 50}
    near = {"x": [-0.25] * 50, "colour": ["blue"] * 50, "size": [-2.0] * 50}
    shift = [{"type": "soft", "node": "x", "transform": "shift", "param": 0.5}]
    on_far = worker.effect(model, "colour", shift, [], observed=far, seed=1).effect
    on_near = worker.effect(model, "colour", shift, [], observed=near, seed=1).effect
    assert abs(on_far) < 0.1 < on_near


def test_attribution_through_a_classifier_names_the_node(worker: Worker) -> None:
    model = categorical_model(worker)
    with pytest.raises(UnsupportedQuery) as caught:
        worker.anomaly(model, "size", {"x": [0.0], "colour": ["red"], "size": [9.0]})
    assert caught.value.node == "colour"


def test_anomaly_ignores_categorical_nodes_off_the_targets_ancestry(worker: Worker) -> None:
    model = categorical_model(worker)  # x -> colour (classifier) -> size
    result = worker.anomaly(model, "x", {"x": [0.1, 4.0], "colour": ["red", "red"], "size": [2.0, 2.0]}, seed=1)
    assert set(result.scores) == {"x"} and set(result.attributions) == {"x"}
    assert result.scores["x"][1] > result.scores["x"][0]


def test_anomaly_below_a_categorical_root_attributes_to_the_right_node(worker: Worker) -> None:
    rng = random.Random(4)
    colour = [rng.choice(["red", "blue"]) for _ in range(600)]
    size = [(2.0 if c == "red" else -2.0) + rng.gauss(0, 0.2) for c in colour]
    graph = {"nodes": ["colour", "size"], "edges": [["colour", "size"]]}
    model = worker.fit(graph, {"colour": colour, "size": size}, seed=1)
    result = worker.anomaly(model, "size", {"colour": ["red"], "size": [9.0]}, seed=2)  # red should be ~2
    assert set(result.scores) == {"size"}  # a categorical root gets no numeric score
    assert result.main_cause(0) == "size"


@pytest.mark.parametrize(
    ("method", "params", "error", "field"),
    [
        ("effect", {"target": "Q", "alternative": do("X", 1)}, InvalidParams, "target"),
        ("effect", {"target": "Z", "alternative": []}, InvalidParams, "alternative"),
        ("effect", {"target": "Z", "alternative": do("X", 1), "confidence": 1.5}, InvalidParams, "confidence"),
        ("effect", {"target": "Z", "alternative": do("X", 1), "num_samples": 10**9}, LimitExceeded, None),
        ("arrow_strength", {"target": "X"}, InvalidParams, "target"),
        ("influence", {"target": "Z", "num_training_samples": 10**7}, LimitExceeded, None),
        ("anomaly", {"target": "Z", "rows": {"X": [1.0]}}, InvalidParams, "rows"),
        ("distribution_change", {"target": "Z", "old": {}, "new": {}}, InvalidParams, "old"),
        ("distribution_change", {"target": "Z", "old": generate(5, 1), "new": generate(5, 2), "measure": "median"},
         InvalidParams, "measure"),
    ],
)
def test_bad_question_input_gets_its_error_and_worker_keeps_serving(
    worker: Worker, model: Any, method: str, params: dict[str, Any], error: type, field: str | None
) -> None:
    with pytest.raises(error) as caught:
        worker.call(method, {"model_id": model.model_id, **params})
    if field is not None:
        assert caught.value.field == field
    assert worker.ping() == "pong"


def test_evaluate_diagnostics_on_request(worker: Worker, model: Any) -> None:
    rows = generate(150, seed=12)
    plain = worker.call("evaluate", {"model_id": model.model_id, "traces": rows})
    assert "invertibility" not in plain and "falsification" not in plain
    report = worker.call("evaluate", {"model_id": model.model_id, "traces": rows, "invertibility": True,
                                      "falsify_graph": True, "max_permutations": 10, "seed": 1})
    assert set(report["invertibility"]) == {"Y", "Z"}
    assert all(entry["rejected"] is False for entry in report["invertibility"].values())
    assert report["falsification"]["permutations"] == 10
    assert report["falsification"]["falsified"] is False
    with pytest.raises(LimitExceeded):
        worker.call("evaluate", {"model_id": model.model_id, "traces": rows, "falsify_graph": True,
                                 "max_permutations": 100000})
