"""Model selection and node-parallel fitting against DoWhy itself, in this process.

The pruned selection (``scm_worker.fast.selection``) must choose what
``gcm.auto.select_model`` chooses, with the same scores for every candidate it
completes; a seeded fit must come out the same whatever the concurrency.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from dowhy.gcm.auto import AssignmentQuality
from dowhy.gcm.auto import select_model as dowhy_select_model
from dowhy.gcm.ml import create_linear_regressor
from dowhy.gcm.ml.regression import create_hist_gradient_boost_regressor, create_polynom_regressor
from dowhy.gcm.util.general import set_random_seed
from scm_worker.checks import FitConfig, parse_graph, parse_traces
from scm_worker.engine import mechanism_choice
from scm_worker.engine.fitting import by_expected_work, fit_model, to_networkx
from scm_worker.engine.frames import to_frame
from scm_worker.engine.mechanism_choice import prefer_linear
from scm_worker.engine.node_fitting import single_threaded
from scm_worker.fast import selection
from scm_worker.fast.selection import Candidate, select_model
from scm_worker.limits import Limits


def _targets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Targets where gradient boosting wins, loses badly, loses narrowly, and ties at zero."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    noise = rng.normal(scale=0.3, size=400)
    return {
        "step": (x, np.where(x[:, 0] > 0, 3.0, -3.0) + x[:, 1] + noise),
        "quadratic": (x, x[:, 0] ** 2 - 2 * x[:, 1] + noise),
        "linear": (x, 1.5 * x[:, 0] - x[:, 1] + noise),
        "exact": (x, 2.0 * x[:, 0] + 1.0),
        "many_parents": (rng.normal(size=(400, 7)), rng.normal(size=400)),
    }


@pytest.mark.parametrize("quality", [AssignmentQuality.GOOD, AssignmentQuality.BETTER])
def test_pruned_selection_chooses_what_dowhy_chooses(quality: AssignmentQuality) -> None:
    pruned_seen = 0
    with single_threaded():
        for name, (X, y) in _targets().items():
            for seed in (1, 2):
                set_random_seed(seed)
                _, dowhy = dowhy_select_model(X, y, quality)
                set_random_seed(seed)
                _, ours = select_model(X, y, quality)
                full = {factory: score for factory, score, _ in dowhy}
                assert ours[0].factory is dowhy[0][0], name
                for candidate in ours:
                    if candidate.pruned:
                        pruned_seen += 1
                        assert candidate.score <= full[candidate.factory], (name, candidate)
                    else:
                        assert candidate.score == full[candidate.factory], (name, candidate)
                assert [c.factory for c in ours if not c.pruned] == [
                    f for f, _, _ in dowhy if f in {c.factory for c in ours if not c.pruned}
                ]
    assert pruned_seen > 0, "no candidate was cut short: the test data no longer exercises pruning"


def test_linear_tolerance_keeps_the_linear_score_exact_when_parsimony_needs_it() -> None:
    X, y = _targets()["linear"]
    set_random_seed(4)
    _, dowhy = dowhy_select_model(X, y, AssignmentQuality.GOOD)
    set_random_seed(4)
    # generous: linear must never be cut short
    _, ours = select_model(X, y, AssignmentQuality.GOOD, linear_tolerance=0.5)
    linear = next(c for c in ours if c.factory is create_linear_regressor)
    assert not linear.pruned
    assert linear.score == {f: s for f, s, _ in dowhy}[create_linear_regressor]


def test_categorical_target_goes_to_dowhy_unchanged() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    y = np.where(X[:, 0] > 0, "yes", "no").astype(object)
    set_random_seed(6)
    model, dowhy = dowhy_select_model(X, y, AssignmentQuality.GOOD)
    assert not selection.applies(X, y, AssignmentQuality.GOOD)
    set_random_seed(6)
    ours_model, ours = mechanism_choice.select_model(X, y, AssignmentQuality.GOOD)
    assert type(ours_model) is type(model)
    def same(factory: Any) -> Any:  # DoWhy builds fresh functools.partial objects per call
        return getattr(factory, "func", factory)

    assert [(same(c.factory), c.score, c.pruned) for c in ours] == [(same(f), s, False) for f, s, _ in dowhy]


def _candidate(factory: Any, score: float, pruned: bool = False) -> Candidate:
    return Candidate(factory, score, "mse", pruned)


def test_prefer_linear_within_tolerance_only_with_a_complete_linear_score() -> None:
    close = [_candidate(create_polynom_regressor, 1.00), _candidate(create_linear_regressor, 1.0005)]
    assert prefer_linear(close, tolerance=0.001)
    assert not prefer_linear(close, tolerance=0.0001)
    far = [_candidate(create_hist_gradient_boost_regressor, 0.2), _candidate(create_linear_regressor, 0.9, pruned=True)]
    assert not prefer_linear(far, tolerance=0.001)
    assert not prefer_linear([_candidate(create_linear_regressor, 0.1)], tolerance=0.001)


def test_prefer_linear_compares_relatively_not_by_the_variance() -> None:
    """The exact-product node of issue 33: the polynomial's CV MSE is about 1e-19, the
    linear one's 5e7 (R² 0.9997 of a variance near 1.7e11). An absolute R² margin of 0.001
    kept the linear model; relative to the best MSE it is 5e26 times worse."""
    product = [_candidate(create_polynom_regressor, 1e-19), _candidate(create_linear_regressor, 5e7)]
    assert not prefer_linear(product, tolerance=0.001)
    assert not prefer_linear(product, tolerance=1e6)
    # the same ratio kept at any scale: 1 % worse passes a 2 % tolerance, fails a 0.5 % one
    for scale in (1e-12, 1.0, 1e12):
        scaled = [_candidate(create_polynom_regressor, scale), _candidate(create_linear_regressor, 1.01 * scale)]
        assert prefer_linear(scaled, tolerance=0.02)
        assert not prefer_linear(scaled, tolerance=0.005)


def test_prefer_linear_at_tolerance_zero_is_dowhys_choice_even_on_a_tie() -> None:
    tie = [_candidate(create_polynom_regressor, 0.5), _candidate(create_linear_regressor, 0.5)]
    assert not prefer_linear(tie, tolerance=0.0)
    assert prefer_linear(tie, tolerance=1e-9)


def test_linear_bound_is_the_selection_bound_of_the_linear_candidate_only() -> None:
    """One rule: the pruned selection holds the linear candidate to the bound prefer_linear
    uses, and every other candidate to the best score."""
    assert selection.linear_bound(2.0, 0.25) == 2.5
    assert selection.stop_above(create_linear_regressor, 2.0, 0.25) == 2.5
    assert selection.stop_above(create_hist_gradient_boost_regressor, 2.0, 0.25) == 2.0
    assert selection.stop_above(create_linear_regressor, 2.0, 0.0) == 2.0


def test_single_threaded_restores_dowhys_job_count() -> None:
    before = gcm.config.default_n_jobs
    with single_threaded():
        assert gcm.config.default_n_jobs == 1
    assert gcm.config.default_n_jobs == before


def _dag_request(rows: int = 300) -> tuple[Any, Any]:
    rng = np.random.default_rng(8)
    a = rng.normal(size=rows)
    b = 2 * a + rng.normal(scale=0.3, size=rows)
    c = np.tanh(a) - b + rng.normal(scale=0.3, size=rows)
    d = (b > 0).astype(int) * 2 + c + rng.normal(scale=0.3, size=rows)
    kind = np.where(c > 0, "up", "down")
    columns = {"a": a, "b": b, "c": c, "d": d, "kind": kind}
    graph = parse_graph(
        {"nodes": list(columns), "edges": [["a", "b"], ["a", "c"], ["b", "c"], ["b", "d"], ["c", "d"], ["c", "kind"]]},
        Limits(),
    )
    traces = {name: pd.Series(values).tolist() for name, values in columns.items()}
    return graph, to_frame(parse_traces(traces, graph.nodes, Limits()))


def test_seeded_fit_is_the_same_sequential_and_node_parallel() -> None:
    graph, frame = _dag_request()
    config = FitConfig(seed=11, validate_r2=False)
    sequential = fit_model(graph, frame, config, n_jobs=1).summary
    parallel = fit_model(graph, frame, config, n_jobs=2).summary
    for summary in (sequential, parallel):
        for varies in ("fitting_time_ms", "node_fit_ms", "fit_processes"):  # timings, n_jobs
            summary["metadata"].pop(varies)
    assert parallel == sequential
    assert sequential["scm"]["mechanisms"]["kind"]["type"] == "classifier"
    assert set(sequential["validation"]["r2_scores"]) == {"b", "c", "d"}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_each_non_root_node_reports_its_task_time_within_the_fit(n_jobs: int) -> None:
    graph, frame = _dag_request()
    metadata = fit_model(graph, frame, FitConfig(seed=3, validate_r2=False), n_jobs).summary[
        "metadata"
    ]
    assert list(metadata["node_fit_ms"]) == ["b", "c", "d", "kind"]  # graph order, roots left out
    assert all(ms >= 0 for ms in metadata["node_fit_ms"].values())
    assert metadata["fit_processes"] == n_jobs
    # tasks in one process run one after another, inside the fit's own time
    assert sum(metadata["node_fit_ms"].values()) <= n_jobs * metadata["fitting_time_ms"]


def test_node_tasks_come_most_parents_first() -> None:
    graph, _ = _dag_request()
    digraph = to_networkx(graph)
    order = by_expected_work(digraph)
    assert [(node, len(parents)) for _, node, parents in order] == [
        ("c", 2), ("d", 2), ("b", 1), ("kind", 1)
    ]
    topological = list(nx.topological_sort(digraph))
    assert all(topological[index] == node for index, node, _ in order)
