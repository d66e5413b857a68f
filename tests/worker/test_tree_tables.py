"""Lookup tables of boosted trees (tree_tables.py) and the predictions built on them.

A table must give sklearn's very floats: every comparison here is ``array_equal``, on
random rows and on the inputs where a tree walk could go either way (each threshold,
the floats next to it, infinities). Then the samplers that use the tables (draws.py,
through predictions.py) must still give DoWhy's own draws and counterfactuals on a
model whose mechanisms are boosted trees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from scm_worker.engine import predictions
from scm_worker.engine.draws import counterfactual_samples, interventional_samples
from scm_worker.engine.interventions import Intervention
from scm_worker.fast import tree_tables
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

RNG = np.random.default_rng(11)


def _boosted(features: int, rows: int = 1500, **params: object) -> HistGradientBoostingRegressor:
    X = RNG.normal(size=(rows, features))
    y = np.sin(2 * X[:, 0]) + X.sum(axis=1) ** 2 + RNG.normal(scale=0.1, size=rows)
    return HistGradientBoostingRegressor(random_state=0, **params).fit(X, y)


def _edge_rows(table: tree_tables.TreeTable) -> np.ndarray:
    """Rows whose values sit on, just above and just below every threshold, and beyond."""
    features = len(table.thresholds)
    parts = [RNG.normal(scale=3, size=(500, features))]
    for feature, cuts in enumerate(table.thresholds):
        for values in (cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf)):
            rows = RNG.normal(size=(len(values), features))
            rows[:, feature] = values
            parts.append(rows)
    parts.append(np.array([[np.inf] * features, [-np.inf] * features, [1e300] * features]))
    return np.vstack(parts)


@pytest.mark.parametrize("features", [1, 2])
def test_table_gives_sklearns_own_predictions(features: int) -> None:
    model = _boosted(features)
    table = tree_tables.build(model)
    assert table is not None
    rows = _edge_rows(table)
    assert np.array_equal(table.lookup(rows), model.predict(rows))


def test_table_of_a_model_that_stopped_early_or_never_split() -> None:
    for model in (_boosted(2, early_stopping=True, n_iter_no_change=2), _boosted(1, max_depth=1,
                                                                                  max_iter=3)):
        table = tree_tables.build(model)
        assert table is not None
        rows = _edge_rows(table)
        assert np.array_equal(table.lookup(rows), model.predict(rows))
    flat = HistGradientBoostingRegressor(max_iter=5).fit(np.zeros((50, 1)), np.ones(50))
    flat_table = tree_tables.build(flat)
    assert flat_table is not None
    assert np.array_equal(flat_table.lookup(np.array([[0.0], [5.0]])), flat.predict([[0.0], [5.0]]))


def test_too_many_cells_categories_or_classes_get_no_table() -> None:
    assert tree_tables.build(_boosted(4)) is None  # 4 inputs × ~200 thresholds each
    X = np.column_stack([RNG.integers(0, 4, 400), RNG.normal(size=400)])
    categorical = HistGradientBoostingRegressor(categorical_features=[0]).fit(X, X[:, 0] + X[:, 1])
    assert tree_tables.build(categorical) is None
    classifier = HistGradientBoostingClassifier(max_iter=5).fit(X, X[:, 0] > 1)
    assert tree_tables.build(classifier) is None


def test_lookup_leaves_missing_values_to_sklearn() -> None:
    model = _boosted(1)
    table = tree_tables.build(model)
    assert table is not None
    rows = np.array([[0.5], [np.nan]])
    assert table.lookup(rows) is None
    wrapped = gcm.ml.SklearnRegressionModel(model)
    assert np.array_equal(predictions.predict(wrapped, rows), wrapped.predict(rows))


def test_predict_builds_a_table_only_once_enough_rows_were_asked_for() -> None:
    wrapped = gcm.ml.SklearnRegressionModel(_boosted(2))
    few = RNG.normal(size=(predictions.BUILD_AFTER_ROWS // 2, 2))
    assert np.array_equal(predictions.predict(wrapped, few), wrapped.predict(few))
    assert predictions._tabulations[wrapped].table is None
    assert np.array_equal(predictions.predict(wrapped, few), wrapped.predict(few))
    assert predictions._tabulations[wrapped].table is not None
    assert np.array_equal(predictions.predict(wrapped, few), wrapped.predict(few))


def _boosted_scm() -> tuple[gcm.InvertibleStructuralCausalModel, pd.DataFrame]:
    """a → b → c ← d, every non-root an additive-noise model over a boosted regressor."""
    rows = 1200
    a, d = RNG.normal(size=rows), RNG.normal(size=rows)
    b = np.tanh(2 * a) + RNG.normal(scale=0.3, size=rows)
    c = b * d + np.sin(d) + RNG.normal(scale=0.3, size=rows)
    data = pd.DataFrame({"a": a, "b": b, "c": c, "d": d})
    scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph([("a", "b"), ("b", "c"), ("d", "c")]))
    for root in "ad":
        scm.set_causal_mechanism(root, gcm.EmpiricalDistribution())
    for node in "bc":
        regressor = gcm.ml.SklearnRegressionModel(HistGradientBoostingRegressor(random_state=0))
        scm.set_causal_mechanism(node, gcm.AdditiveNoiseModel(regressor))
    gcm.util.general.set_random_seed(0)
    gcm.fit(scm, data)
    return scm, data


def test_samplers_with_tables_give_dowhys_draws_and_counterfactuals() -> None:
    scm, data = _boosted_scm()
    kinds = dict.fromkeys(data.columns, "numeric")
    for seed in range(3):  # the first draws earn the tables, the later ones use them
        gcm.util.general.set_random_seed(seed)
        dowhy = gcm.draw_samples(scm, 1500)
        gcm.util.general.set_random_seed(seed)
        ours = interventional_samples(scm, [], kinds, 1500)  # type: ignore[arg-type]
        assert ours.equals(dowhy[ours.columns])
    assert all(predictions._tabulations[scm.causal_mechanism(n).prediction_model].table
               is not None for n in "bc")
    observed = data.iloc[:300].reset_index(drop=True)
    hard = Intervention("a", "hard", value=0.7)
    ours = counterfactual_samples(scm, [hard], kinds, observed)  # type: ignore[arg-type]
    dowhy = gcm.counterfactual_samples(scm, {"a": lambda _: 0.7}, observed_data=observed)
    np.testing.assert_allclose(ours.to_numpy(), dowhy[ours.columns].to_numpy(), rtol=0,
                               atol=1e-12)


def test_a_models_table_bytes_are_the_tables_its_draws_built() -> None:
    scm, _ = _boosted_scm()
    assert predictions.table_bytes(scm) == 0  # fitted, never drawn from
    interventional_samples(scm, [], dict.fromkeys("abcd", "numeric"), 1500)  # type: ignore[arg-type]
    tables = [predictions._tabulations[scm.causal_mechanism(n).prediction_model].table for n in "bc"]
    assert all(t is not None for t in tables)
    expected = sum(t.values.nbytes + sum(c.nbytes for c in t.thresholds) for t in tables if t)
    assert predictions.table_bytes(scm) == expected > 0


def _seeded(seed: int, query: Callable[[], Any]) -> Any:
    gcm.util.general.set_random_seed(seed)
    return query()


def test_dowhys_queries_on_the_tabulated_view_give_the_same_answers() -> None:
    scm, data = _boosted_scm()
    mechanisms = {node: scm.causal_mechanism(node) for node in scm.graph.nodes}
    view = predictions.tabulated(scm)
    new = data.iloc[600:].assign(c=lambda rows: rows["c"] + 0.5)
    queries: dict[str, Callable[[Any], Any]] = {
        "arrow_strength": lambda m: gcm.arrow_strength(m, "c", num_samples_conditional=500,
                                                       n_jobs=1),
        "influence": lambda m: gcm.intrinsic_causal_influence(
            m, "c", num_training_samples=500, num_samples_randomization=20,
            num_samples_baseline=100),
        "anomaly": lambda m: gcm.attribute_anomalies(m, "c", data.iloc[:5],
                                                     num_distribution_samples=500),
        "distribution_change": lambda m: gcm.distribution_change(m, data.iloc[:600], new, "c",
                                                                 num_samples=500),
    }
    for name, query in queries.items():
        for seed in range(1 if name == "distribution_change" else 2):  # it refits: seconds
            ours, dowhy = _seeded(seed, lambda: query(view)), _seeded(seed, lambda: query(scm))
            assert ours.keys() == dowhy.keys(), name
            for key in ours:
                assert np.array_equal(ours[key], dowhy[key]), (name, key)
    tabulated = [predictions._tabulations.get(view.causal_mechanism(n).prediction_model.inner)
                 for n in "bc"]
    assert all(t is not None and t.table is not None for t in tabulated)
    assert {node: scm.causal_mechanism(node) for node in scm.graph.nodes} == mechanisms
    assert not any(isinstance(m.prediction_model, predictions.TabulatedPrediction)
                   for n, m in mechanisms.items() if n in "bc")
