"""Choosing one node's mechanism: DoWhy's model selection, then the opt-in parsimony rule.

The selection is ``gcm.auto.select_model``'s, or, where the gate lets it run, the pruned
one (``fast.selection``), which chooses the same model with the same completed scores.

With ``config.linear_tolerance`` (opt-in; 0 by default) the linear model is kept where
its cross-validated MSE is within that factor of the best, and the choice says what it
overrode. The mechanism a choice becomes is DoWhy's rule (``assign_causal_mechanism_node``):
categorical target → ClassifierFCM, integer-valued target → DiscreteAdditiveNoiseModel,
else AdditiveNoiseModel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
from dowhy import gcm
from dowhy.gcm import auto
from dowhy.gcm.auto import AssignmentQuality
from dowhy.gcm.ml import ClassificationModel, create_linear_regressor

from .. import fast
from ..fast import selection
from ..fast.selection import Candidate, linear_bound
from . import quick_choice

#: a quality as the node fits receive it: DoWhy's, or the worker's own FAST selection
Quality: TypeAlias = AssignmentQuality | Literal["FAST"]


@dataclass(frozen=True)
class Override:
    """The opt-in parsimony rule (``config.linear_tolerance``) kept the linear model over
    DoWhy's choice: both models and both cross-validated MSEs, as the fit reports them."""

    dowhy_model: str
    dowhy_score: float
    linear_score: float

    def as_json(self) -> dict[str, Any]:
        return {"dowhy_model": self.dowhy_model, "dowhy_score": self.dowhy_score,
                "kept_model": LINEAR, "kept_score": self.linear_score}


@dataclass(frozen=True)
class Choice:
    """An unfitted mechanism, the candidates it was chosen from (best first), and, where
    the parsimony rule overrode DoWhy's choice, what it overrode."""

    mechanism: Any
    candidates: list[Candidate]
    override: Override | None = None


def choose_mechanism(
    X: np.ndarray, y: np.ndarray, quality: Quality, linear_tolerance: float
) -> Choice:
    """DoWhy's choice (``linear_tolerance`` 0, the default) or, opted in, the linear model
    where it is within the tolerance of DoWhy's."""
    model, candidates = select_model(X, y, quality, linear_tolerance)
    if isinstance(model, ClassificationModel):
        return Choice(gcm.ClassifierFCM(model), candidates)
    override = linear_override(candidates, linear_tolerance)
    if override is not None:
        model = create_linear_regressor()
    return Choice(additive_noise(model, y), candidates, override)


def additive_noise(model: Any, y: np.ndarray) -> Any:
    """DoWhy's wrapping of a regressor: discrete additive noise for a whole-valued target."""
    discrete = integer_valued(y)
    return gcm.DiscreteAdditiveNoiseModel(model) if discrete else gcm.AdditiveNoiseModel(model)


def numeric(y: np.ndarray) -> bool:
    """A number column: the worker's numeric columns are float64 (frames.py); strings and
    booleans come as objects, the targets DoWhy's selection classifies."""
    return y.dtype.kind in "iuf"


def integer_valued(y: np.ndarray) -> bool:
    """DoWhy's rule for a discrete target (its ``is_discrete``: every value whole)."""
    return bool(np.all(y == np.floor(y)))


def select_model(
    X: np.ndarray, y: np.ndarray, quality: Quality, linear_tolerance: float = 0.0
) -> tuple[Any, list[Candidate]]:
    """DoWhy's choice for this node and its candidates, best first: pruned where the gate
    lets the pruned selection run and it takes the node, else DoWhy's own selection; at
    FAST the worker's own (``quick_choice``)."""
    if quality == quick_choice.FAST:
        return quick_choice.select_model(X, y, classify=not numeric(y))
    assert isinstance(quality, AssignmentQuality)
    if fast.enabled("pruned_selection") and selection.applies(X, y, quality):
        return selection.select_model(X, y, quality, linear_tolerance)
    model, performances = auto.select_model(X, y, quality)
    return model, [Candidate(f, float(s), m) for f, s, m in performances]


def prefer_linear(candidates: list[Candidate], tolerance: float) -> bool:
    """Parsimony, opted into: choose the linear model when its CV MSE is at most
    ``(1 + tolerance)`` × the best candidate's (``selection.linear_bound``).

    DoWhy picks the lowest 5-fold MSE, so on truly linear data a polynomial wins about
    half the time by a hair (0.01022 vs 0.01021) and the coefficients are lost; a user
    who wants them back sets a tolerance. At 0 (the default) the choice is DoWhy's, even
    on a tie. A linear candidate cut short by the selection was already further behind
    than the bound.
    """
    if tolerance <= 0 or not candidates or candidates[0].factory is create_linear_regressor:
        return False
    linear = [c.score for c in candidates if c.factory is create_linear_regressor and not c.pruned]
    return bool(linear) and linear[0] <= linear_bound(candidates[0].score, tolerance)


def linear_override(candidates: list[Candidate], tolerance: float) -> Override | None:
    """What keeping the linear model overrides, when ``prefer_linear`` keeps it."""
    if not prefer_linear(candidates, tolerance):
        return None
    linear = next(c for c in candidates if c.factory is create_linear_regressor)
    best = candidates[0]
    return Override(factory_name(best.factory), float(best.score), float(linear.score))


def factory_name(factory: Any) -> str:
    """A candidate as the fit result names it: ``linear_regressor``, ``polynom_regressor``."""
    return str(getattr(factory, "__name__", factory)).removeprefix("create_")


#: the linear candidate's name in the fit result
LINEAR = factory_name(create_linear_regressor)


def scored_candidates(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """As the fit result lists them; a pruned candidate's score is a lower bound, one FAST
    did not try has none (null), and what FAST cut of a candidate is said (``cut``)."""
    described = []
    for c in candidates:
        entry: dict[str, Any] = {
            "model": factory_name(c.factory),
            "score": None if c.cut is not None and not np.isfinite(c.score) else float(c.score),
            "metric": c.metric,
        }
        if c.pruned:
            entry["pruned"] = True
        if c.cut is not None:
            entry["cut"] = c.cut
        described.append(entry)
    return described
