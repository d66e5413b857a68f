"""Choosing one node's mechanism: DoWhy's model selection, then the parsimony rule.

The selection is ``gcm.auto.select_model``'s, or, where the gate lets it run, the pruned
one (``fast.selection``), which chooses the same model with the same completed scores.

The mechanism a choice becomes is DoWhy's rule (``assign_causal_mechanism_node``):
categorical target → ClassifierFCM, integer-valued target → DiscreteAdditiveNoiseModel,
else AdditiveNoiseModel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dowhy import gcm
from dowhy.gcm import auto
from dowhy.gcm.auto import AssignmentQuality
from dowhy.gcm.ml import ClassificationModel, create_linear_regressor

from .. import fast
from ..fast import selection
from ..fast.selection import Candidate


@dataclass(frozen=True)
class Choice:
    """An unfitted mechanism and the candidates it was chosen from, best first."""

    mechanism: Any
    candidates: list[Candidate]


def choose_mechanism(
    X: np.ndarray, y: np.ndarray, quality: AssignmentQuality, linear_tolerance: float
) -> Choice:
    variance = float(np.var(y.astype(float))) if numeric(y) else 0.0
    model, candidates = select_model(X, y, quality, linear_slack=linear_tolerance * variance)
    if isinstance(model, ClassificationModel):
        return Choice(gcm.ClassifierFCM(model), candidates)
    if prefer_linear(candidates, variance, linear_tolerance):
        model = create_linear_regressor()
    discrete = integer_valued(y)
    mechanism = gcm.DiscreteAdditiveNoiseModel(model) if discrete else gcm.AdditiveNoiseModel(model)
    return Choice(mechanism, candidates)


def numeric(y: np.ndarray) -> bool:
    """A number column: the worker's numeric columns are float64 (frames.py); strings and
    booleans come as objects, the targets DoWhy's selection classifies."""
    return y.dtype.kind in "iuf"


def integer_valued(y: np.ndarray) -> bool:
    """DoWhy's rule for a discrete target (its ``is_discrete``: every value whole)."""
    return bool(np.all(y == np.floor(y)))


def select_model(
    X: np.ndarray, y: np.ndarray, quality: AssignmentQuality, linear_slack: float = 0.0
) -> tuple[Any, list[Candidate]]:
    """DoWhy's choice for this node and its candidates, best first: pruned where the gate
    lets the pruned selection run and it takes the node, else DoWhy's own selection."""
    if fast.enabled("pruned_selection") and selection.applies(X, y, quality):
        return selection.select_model(X, y, quality, linear_slack)
    model, performances = auto.select_model(X, y, quality)
    return model, [Candidate(f, float(s), m) for f, s, m in performances]


def prefer_linear(candidates: list[Candidate], variance: float, tolerance: float) -> bool:
    """Parsimony: choose the linear model when it costs at most ``tolerance`` in R².

    DoWhy picks the lowest 5-fold MSE, so on truly linear data a polynomial wins about
    half the time by a hair (0.01022 vs 0.01021) and the coefficients are lost. Linear
    is kept when its CV MSE exceeds the best by at most ``tolerance`` × Var(node), i.e.
    when it loses at most ``tolerance`` of cross-validated R². A linear candidate cut
    short by the selection was already further behind than that.
    """
    if not candidates or candidates[0].factory is create_linear_regressor:
        return False
    best = candidates[0].score
    linear = [c.score for c in candidates if c.factory is create_linear_regressor and not c.pruned]
    return bool(linear) and linear[0] <= best + tolerance * variance


def scored_candidates(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """As the fit result lists them; a pruned candidate's score is a lower bound."""
    described = []
    for c in candidates:
        entry: dict[str, Any] = {
            "model": getattr(c.factory, "__name__", str(c.factory)).removeprefix("create_"),
            "score": float(c.score),
            "metric": c.metric,
        }
        if c.pruned:
            entry["pruned"] = True
        described.append(entry)
    return described
