"""Held-out scores and the pass rule: pure numpy, no DoWhy.

R² = 1 − SS_res/SS_tot. On a constant target SS_tot is 0 and R² is undefined; as in
scikit-learn's ``r2_score`` it is then 1.0 for a perfect prediction and 0.0 otherwise,
so a constant node neither vanishes from the mean nor sends NaN over the wire.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEAKAGE_R2 = 0.9999


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    constant = bool(np.all(y_true == y_true[0])) if y_true.size else True
    scale = float(max(np.max(np.abs(y_true), initial=0.0), np.max(np.abs(y_pred), initial=0.0)))
    if scale > 0.0 and np.isfinite(scale):  # R² is scale-free; squaring 1e200 would overflow
        y_true, y_pred = y_true / scale, y_pred / scale
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if constant or ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    # A prediction off by more than 10^308 target variances is beyond float: the lowest float.
    return max(1.0 - ss_res / ss_tot, -sys.float_info.max)


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    diff = np.asarray(y_true, dtype=float).ravel() - np.asarray(y_pred, dtype=float).ravel()
    return float(np.mean(diff**2))


def nmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """DoWhy's normalised error (``gcm.model_evaluation.nmse``, as ``evaluate_causal_model``
    reports it): the root mean squared error over the target's standard deviation; on a
    constant target, the root mean squared error itself."""
    deviation = float(np.std(np.asarray(y_true, dtype=float)))
    error = float(np.sqrt(mse(y_true, y_pred)))
    return error if deviation == 0.0 else error / deviation


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)))


def verdict_text(validation: dict[str, Any]) -> str:
    """A fit's validation in words (``fit``'s -32003 message, the report's headline)."""
    mean, threshold = validation["mean_r2"], validation["threshold"]
    verdict = "passed" if validation["passed"] else "failed"
    if validation["rule"] == "each":
        failed = ", ".join(validation["failed_nodes"])
        detail = f"every node's R² ≥ {threshold:g}" + (f"; below: {failed}" if failed else "")
    elif mean is None:
        detail = "no numeric node to score"
    else:
        detail = f"mean R² {mean:.3f} {'≥' if mean >= threshold else '<'} {threshold:g}"
    return f"validation {verdict}: {detail}"


@dataclass(frozen=True)
class Verdict:
    mean_r2: float | None
    passed: bool
    failed_nodes: list[str] = field(default_factory=list)


def judge(r2_scores: dict[str, float], threshold: float, rule: str) -> Verdict:
    """Mean R² over scored numeric nodes ≥ threshold ("mean"), or every node ("each").

    A graph with no scored node (only roots, or only categorical children) has no R²
    to fail: it passes, with mean_r2 null.
    """
    failed = [node for node, score in r2_scores.items() if score < threshold]
    if not r2_scores:
        return Verdict(None, True, [])
    mean = float(np.mean(list(r2_scores.values())))
    passed = not failed if rule == "each" else mean >= threshold
    return Verdict(mean, passed, failed)
