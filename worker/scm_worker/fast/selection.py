"""DoWhy's model selection for one regression node, with candidates that cannot win cut short.

``gcm.auto.select_model`` scores every candidate by 5-fold cross-validated MSE and keeps
the lowest. Its cost is almost all in the expensive candidates (gradient boosting): the
linear ones take milliseconds. Here the cheap candidates are scored first, and an
expensive one stops as soon as the folds it has already scored prove it cannot win:
MSE is never negative, so after ``j`` of ``k`` folds its mean is at least
``sum_so_far / k``; once that bound exceeds the best complete score, the rest of its
folds cannot change the choice. Everything else is DoWhy's exactly — the candidate
lists, the polynomial rule, the folds and per-candidate seeds drawn from the global RNG
in DoWhy's order — so the chosen model, and every score that is completed, equal
``select_model``'s. With a ``linear_tolerance`` the user opted into, the linear candidate
is held to ``linear_bound`` instead, so the opt-in parsimony rule
(``mechanism_choice.prefer_linear``, the same bound) still sees its exact score whenever it
could matter.

It reads DoWhy's private candidate lists (``auto._LIST_OF_POTENTIAL_REGRESSORS_*``) and
replays ``find_best_model``'s draws, so it runs only where the gate (``scm_worker.fast``)
says this DoWhy is the one it was verified on; ``applies`` says which nodes it takes
(regression targets without missing values at GOOD or BETTER): classification targets,
missing values and ``BEST`` go to DoWhy's own ``select_model``, as does everything when
the gate is closed (``engine/mechanism_choice.py`` decides).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dowhy.gcm import auto
from dowhy.gcm.ml import PredictionModel
from dowhy.gcm.ml.regression import (
    create_extra_trees_regressor,
    create_hist_gradient_boost_regressor,
    create_linear_regressor,
    create_polynom_regressor,
    create_random_forest_regressor,
    create_support_vector_regressor,
)
from dowhy.gcm.util.general import (
    auto_apply_encoders,
    auto_fit_encoders,
    is_categorical,
    set_random_seed,
    shape_into_2d,
)
from sklearn import metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

Factory = Callable[[], PredictionModel]

#: the qualities whose candidate lists ``regressors`` reads (BEST is DoWhy's own)
QUALITIES = (auto.AssignmentQuality.GOOD, auto.AssignmentQuality.BETTER)


def regressors(quality: auto.AssignmentQuality) -> list[Factory]:
    """The regression candidates ``gcm.auto.select_model`` scores at ``quality``: DoWhy's
    private lists, read only when called (importing this module reads none of them)."""
    lists = {
        auto.AssignmentQuality.GOOD: auto._LIST_OF_POTENTIAL_REGRESSORS_GOOD,
        auto.AssignmentQuality.BETTER: auto._LIST_OF_POTENTIAL_REGRESSORS_BETTER,
    }
    return list(lists[quality])

METRIC = "mean squared error (MSE)"
SPLITS = 5
MAX_SAMPLES_PER_SPLIT = 20000  # find_best_model's default
_EXPENSIVE = frozenset({
    create_hist_gradient_boost_regressor,
    create_random_forest_regressor,
    create_extra_trees_regressor,
    create_support_vector_regressor,
})


@dataclass(frozen=True)
class Candidate:
    """A scored candidate; ``pruned`` means ``score`` is a lower bound on its CV MSE;
    ``cut`` says what FAST (``engine/quick_choice.py``) cut of it and why."""

    factory: Factory
    score: float
    metric: str
    pruned: bool = False
    cut: str | None = None


def applies(X: np.ndarray, y: np.ndarray, quality: auto.AssignmentQuality) -> bool:
    """Whether ``select_model`` takes this node: a numeric target, no missing values, and a
    quality whose candidate lists it knows. The rest is DoWhy's own ``select_model``'s."""
    return not (
        quality not in QUALITIES
        or is_categorical(y)
        or bool(pd.isna(X).any())
        or bool(pd.isna(y).any())
    )


def select_model(
    X: np.ndarray, y: np.ndarray, quality: auto.AssignmentQuality, linear_tolerance: float = 0.0
) -> tuple[Any, list[Candidate]]:
    """DoWhy's choice for a node ``applies`` takes, and its candidates, best first (pruned
    ones last)."""
    scored = find_best_regressor(candidate_factories(X, quality), X, y, linear_tolerance)
    return scored[0].factory(), scored


def candidate_factories(X: np.ndarray, quality: auto.AssignmentQuality) -> list[Factory]:
    """DoWhy's regression candidates for ``X``: the quality's list, and the polynomial one
    when the encoded parents are at most 5 columns (``select_model``'s rule)."""
    factories = regressors(quality)
    if auto_apply_encoders(X, auto_fit_encoders(X)).shape[1] <= 5:
        factories.append(create_polynom_regressor)
    return factories


Folds = list[tuple[np.ndarray, np.ndarray]]


def draw_folds_and_seeds(rows: int, candidates: int) -> tuple[Folds, np.ndarray]:
    """The same draws from the global RNG, in the same order, as ``find_best_model``:
    the shuffled folds, then one seed per candidate."""
    kfolds = list(KFold(n_splits=SPLITS, shuffle=True).split(range(rows)))
    return kfolds, np.random.randint(np.iinfo(np.int32).max, size=candidates)


def is_expensive(factory: Factory) -> bool:
    """Seconds a fit, not milliseconds: the candidates worth cutting short."""
    return factory in _EXPENSIVE


def scoring_order(factories: list[Factory]) -> list[int]:
    """Candidate indices, the cheap ones first: their scores then bound the expensive ones."""
    return sorted(range(len(factories)), key=lambda i: is_expensive(factories[i]))


def linear_bound(best: float, linear_tolerance: float) -> float:
    """The parsimony rule's margin, relative: the linear model is kept while its CV MSE is
    at most ``(1 + linear_tolerance)`` × the best candidate's. An absolute margin (in R²)
    means nothing where R² is near 1: there a 1e-19 against 5e7 MSE is "close"."""
    return best * (1.0 + linear_tolerance)


def stop_above(factory: Factory, best: float, linear_tolerance: float) -> float:
    """The partial-score bound past which ``factory`` cannot win: the best complete score,
    and ``linear_bound`` for the linear candidate (the parsimony rule's margin)."""
    return linear_bound(best, linear_tolerance) if factory is create_linear_regressor else best


def cannot_win(fold_scores: list[float], folds: int, bound: float) -> bool:
    """MSE is never negative: after these folds the mean over all ``folds`` is at least
    their sum over ``folds``, and past ``bound`` the remaining folds cannot change that."""
    return sum(fold_scores) / folds > bound


def find_best_regressor(
    factories: list[Factory], X: np.ndarray, y: np.ndarray, linear_tolerance: float
) -> list[Candidate]:
    """``auto.find_best_model`` for regression, cheap candidates first, losers cut short."""
    X, Y = shape_into_2d(X, y)
    kfolds, seeds = draw_folds_and_seeds(X.shape[0], len(factories))
    best = float("inf")
    results: dict[int, Candidate] = {}
    for i in scoring_order(factories):
        bound = stop_above(factories[i], best, linear_tolerance)
        results[i] = _cross_validate(factories[i], int(seeds[i]), X, Y, kfolds, bound)
        if not results[i].pruned:
            best = min(best, results[i].score)
    # Ties go to the earlier candidate in DoWhy's list, as its stable sort does.
    ranked = sorted(range(len(factories)), key=lambda i: (results[i].pruned, results[i].score, i))
    return [results[i] for i in ranked]


def _cross_validate(
    factory: Factory, seed: int, X: np.ndarray, Y: np.ndarray, kfolds: Folds, bound: float,
) -> Candidate:
    set_random_seed(seed)
    scores: list[float] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        for done, (train, test) in enumerate(kfolds, start=1):
            train, test = train[:MAX_SAMPLES_PER_SPLIT], test[:MAX_SAMPLES_PER_SPLIT]
            model = factory()
            model.fit(X[train], Y[train])
            scores.append(float(metrics.mean_squared_error(Y[test], model.predict(X[test]))))
            if done < len(kfolds) and cannot_win(scores, len(kfolds), bound):
                return Candidate(factory, sum(scores) / len(kfolds), METRIC, pruned=True)
    return Candidate(factory, float(np.mean(scores)), METRIC)
