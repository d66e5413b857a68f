"""FAST's decision rules (``engine/quick_choice.py``) on targets whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from dowhy.gcm.ml import (
    create_hist_gradient_boost_regressor,
    create_linear_regressor,
    create_polynom_regressor,
)
from scm_worker.engine import quick_choice
from scm_worker.engine.dowhy_api import seed_global
from scm_worker.engine.node_fitting import single_threaded

RNG = np.random.default_rng(5)
X2 = RNG.uniform(-2, 2, size=(800, 2))
NOISE = RNG.normal(scale=0.3, size=800)


def choose(X: np.ndarray, y: np.ndarray, seed: int = 1) -> list[quick_choice.Candidate]:
    with single_threaded():
        seed_global(seed)
        return quick_choice.select_model(X, y, classify=False)[1]


def test_no_leftover_in_the_residuals_of_the_true_model() -> None:
    p_value, _ = quick_choice.leftover(NOISE, [X2[:, 0], X2[:, 1]], 1.0)
    assert p_value > quick_choice.SIGNIFICANCE


def test_a_missed_curve_leaves_a_material_leftover() -> None:
    residuals = X2[:, 0] ** 2 - np.mean(X2[:, 0] ** 2) + NOISE
    columns = [X2[:, 0], X2[:, 1]]
    p_value, share = quick_choice.leftover(residuals, columns, float(np.var(residuals)))
    assert p_value < quick_choice.SIGNIFICANCE and share > quick_choice.MATERIAL


def test_repeated_values_bin_into_fewer_groups() -> None:
    column = np.repeat([0.0, 1.0], 50)
    assert len(quick_choice.binned(np.arange(100.0), column)) == 2


def test_a_linear_node_skips_boosting_and_says_why() -> None:
    candidates = choose(X2, 1.5 * X2[:, 0] - X2[:, 1] + NOISE)
    factories = [c.factory for c in candidates]
    assert factories[-1] is create_hist_gradient_boost_regressor
    assert np.isnan(candidates[-1].score) and candidates[-1].cut.startswith("not tried")
    assert set(factories[:2]) == {create_linear_regressor, create_polynom_regressor}


def test_a_step_gets_early_stopped_boosting_and_boosting_wins() -> None:
    y = np.where(X2[:, 0] > 0.3, 3.0, -3.0) + X2[:, 1] + NOISE
    candidates = choose(X2, y)
    assert candidates[0].factory is create_hist_gradient_boost_regressor
    assert np.isfinite(candidates[0].score)


def test_more_than_five_parent_columns_cut_the_polynomial() -> None:
    X = RNG.normal(size=(500, 7))
    candidates = choose(X, X @ np.arange(7.0) + RNG.normal(size=500))
    poly = next(c for c in candidates if c.factory is create_polynom_regressor)
    assert poly.cut == quick_choice.TOO_MANY_COLUMNS and np.isnan(poly.score)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_same_seed_makes_the_same_choice(seed: int) -> None:
    y = np.sin(2 * X2[:, 0]) + NOISE
    assert choose(X2, y, seed) == choose(X2, y, seed)


def test_a_categorical_target_is_classified() -> None:
    labels = np.where(X2[:, 0] + 0.2 * NOISE > 0, "up", "down").astype(object)
    with single_threaded():
        seed_global(1)
        model, candidates = quick_choice.select_model(X2, labels, classify=True)
    assert hasattr(model, "predict_probabilities")
    assert candidates[0].metric == quick_choice.LOG_LOSS
