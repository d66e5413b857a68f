"""scm_worker.engine.scoring: held-out R² (constant targets included) and the pass rule."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scm_worker.engine.scoring import Verdict, accuracy, judge, mse, nmse, r2

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_r2_of_a_perfect_prediction_is_1() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    assert r2(y, y) == 1.0


def test_r2_matches_the_definition() -> None:
    # SS_res = 1, SS_tot = 2 → 1 - 1/2
    assert r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == pytest.approx(0.5)


def test_r2_of_predicting_the_mean_is_0_and_worse_is_negative() -> None:
    y = np.array([1.0, 2.0, 3.0])
    assert r2(y, np.full(3, 2.0)) == pytest.approx(0.0)
    assert r2(y, np.array([3.0, 2.0, 1.0])) == pytest.approx(-3.0)


def test_r2_on_a_constant_target_is_1_when_perfect_and_0_otherwise() -> None:
    y = np.full(5, 3.0)
    assert r2(y, np.full(5, 3.0)) == 1.0
    assert r2(y, np.array([3.0, 3.0, 3.0, 3.0, 3.1])) == 0.0
    assert not math.isnan(r2(y, y + 1))


def test_r2_beyond_the_float_range_is_the_lowest_float_not_minus_infinity() -> None:
    # Found by Hypothesis: SS_res / SS_tot overflowed (a tiny target, a large prediction).
    assert r2(np.array([0.0, 7.955760861500266e-152]), np.array([0.0, 755.0])) == -sys.float_info.max


def test_r2_accepts_lists_and_column_vectors() -> None:
    assert r2([[1.0], [2.0], [3.0]], [1.0, 2.0, 4.0]) == pytest.approx(0.5)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=2, max_size=30), st.lists(finite, min_size=2, max_size=30))
def test_r2_is_finite_and_at_most_1(a: list[float], b: list[float]) -> None:
    n = min(len(a), len(b))
    score = r2(np.array(a[:n]), np.array(b[:n]))
    assert math.isfinite(score)
    assert score <= 1.0 + 1e-9


def test_mse_and_nmse() -> None:
    y, p = np.array([0.0, 2.0]), np.array([1.0, 1.0])
    assert mse(y, p) == 1.0
    assert nmse(y, p) == pytest.approx(1.0)  # RMSE 1 over a standard deviation of 1
    assert nmse(np.array([0.0, 4.0]), np.array([1.0, 3.0])) == pytest.approx(0.5)  # 1 / 2, not 1 / 4
    assert nmse(np.full(3, 2.0), np.full(3, 2.0)) == 0.0
    assert nmse(np.full(3, 2.0), np.full(3, 2.5)) == 0.5  # a constant target: the RMSE, as DoWhy's


def test_nmse_is_dowhy_s() -> None:
    """evaluate's ``nodes[*].nmse`` is the NMSE ``gcm.evaluate_causal_model`` reports."""
    from dowhy.gcm.model_evaluation import nmse as dowhy_nmse

    rng = np.random.default_rng(5)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert nmse(y, p) == pytest.approx(dowhy_nmse(y, p))
    assert nmse(np.full(3, 2.0), np.full(3, 2.5)) == pytest.approx(dowhy_nmse(np.full(3, 2.0), np.full(3, 2.5)))


def test_accuracy_compares_labels() -> None:
    assert accuracy(np.array(["a", "b", "a", "c"]), np.array(["a", "b", "b", "c"])) == 0.75


# -- judge ---------------------------------------------------------------------------------


def test_mean_rule_passes_on_the_mean_though_a_node_is_below() -> None:
    verdict = judge({"a": 1.0, "b": 0.5}, threshold=0.7, rule="mean")
    assert verdict == Verdict(0.75, True, ["b"])


def test_each_rule_fails_when_any_node_is_below() -> None:
    verdict = judge({"a": 1.0, "b": 0.5}, threshold=0.7, rule="each")
    assert verdict == Verdict(0.75, False, ["b"])


def test_mean_rule_fails_when_the_mean_is_below() -> None:
    verdict = judge({"a": 0.75, "b": 0.25, "c": 1.0}, threshold=0.7, rule="mean")
    assert verdict.mean_r2 == pytest.approx(2 / 3)
    assert not verdict.passed
    assert verdict.failed_nodes == ["b"]


@pytest.mark.parametrize("rule", ["mean", "each"])
def test_a_score_equal_to_the_threshold_passes(rule: str) -> None:
    verdict = judge({"a": 0.75, "b": 0.75}, threshold=0.75, rule=rule)
    assert verdict.passed and verdict.failed_nodes == []
    assert verdict.mean_r2 == 0.75


@pytest.mark.parametrize("rule", ["mean", "each"])
def test_nothing_scored_passes_with_a_null_mean(rule: str) -> None:
    assert judge({}, threshold=0.7, rule=rule) == Verdict(None, True, [])


def test_each_rule_passes_when_every_node_is_at_or_above() -> None:
    assert judge({"a": 0.9, "b": 0.8}, threshold=0.8, rule="each").passed


def test_failed_nodes_keep_the_score_order() -> None:
    verdict = judge({"z": 0.1, "a": 0.2, "m": 0.9}, threshold=0.5, rule="each")
    assert verdict.failed_nodes == ["z", "a"]
