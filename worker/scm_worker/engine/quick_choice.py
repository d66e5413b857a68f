"""FAST model selection for one node: cheap candidates first, boosting only where it can pay.

``quality: "FAST"`` is the worker's own selection, not DoWhy's: it does not promise
DoWhy's choice, only a model about as good, found in a fraction of the time. DoWhy's
GOOD cross-validates every candidate over 5 folds, gradient boosting with 100 fixed
rounds, on every node; most of a fit goes there, and on a node a linear or polynomial
model already explains, boosting never wins. Here, on ONE seeded hold-out split:

1. the linear model, and the polynomial one where DoWhy's rule allows it (at most 5
   encoded parent columns), are scored: milliseconds;
2. a cheap test asks whether the best of them left structure behind (``leftover``: its
   residuals binned by each parent and by its own prediction, a one-way ANOVA each);
   where it did not, boosting is not tried, and the candidate says why;
3. where it did, gradient boosting runs with scikit-learn's early stopping
   (``n_iter_no_change`` rounds without gain on its own validation rows) instead of 100
   fixed rounds, and the chosen model keeps the rounds it found.

The lowest hold-out score wins. Categorical targets do the same with the logistic
classifiers and a boosting classifier, by hold-out log loss (DoWhy's classification
metric). Every draw comes from the global RNG, which ``node_fitting.fit_node`` seeds per
node, so a FAST fit is reproducible at any concurrency. Public APIs only: DoWhy's
``dowhy.gcm.ml`` factories (which forward keyword arguments to scikit-learn), and
scikit-learn's and scipy's public functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from dowhy.gcm.ml import (
    create_hist_gradient_boost_classifier,
    create_hist_gradient_boost_regressor,
    create_linear_regressor,
    create_logistic_regression_classifier,
    create_polynom_logistic_regression_classifier,
    create_polynom_regressor,
)
from scipy import stats
from sklearn import metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..fast.selection import Candidate

#: the quality's name on the wire and in ``metadata.quality``
FAST: str = "FAST"
MSE = "hold-out mean squared error (MSE)"
LOG_LOSS = "hold-out log loss"
HOLD_OUT = 0.25  # of the node's training rows; the rest fits the candidates
POLYNOMIAL_MAX_COLUMNS = 5  # DoWhy's rule for offering the polynomial candidates
ROUNDS = 100  # scikit-learn's max_iter, the rounds DoWhy's GOOD boosts for
PATIENCE = 10  # rounds without validation gain before boosting stops
VALIDATION = 0.1  # of the fitting rows, boosting's own early-stopping rows
BINS = 10  # residual bins per column in the leftover test
SIGNIFICANCE = 0.01  # the leftover test's p-value (Bonferroni over its columns)
MATERIAL = 0.002  # leftover worth boosting for: this share of the target's variance
LOGISTIC_ITERATIONS = 10000  # DoWhy's max_iter for its logistic candidates

Model = Any  # a dowhy.gcm.ml PredictionModel or ClassificationModel


@dataclass(frozen=True)
class Split:
    """The one hold-out split every candidate of a node is scored on."""

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_hold: np.ndarray
    y_hold: np.ndarray


@dataclass(frozen=True)
class Tried:
    """A candidate fitted on the split: its hold-out score and the model to build."""

    candidate: Candidate
    build: Callable[[], Model]


def select_model(X: np.ndarray, y: np.ndarray, classify: bool) -> tuple[Model, list[Candidate]]:
    """FAST's choice for one node, unfitted, and its candidates (tried best first, then
    the ones cut, each with ``cut`` saying why)."""
    split = draw_split(X, y, classify)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        tried, cut = (classifiers if classify else regressors)(split)
    tried.sort(key=lambda t: t.candidate.score)
    return tried[0].build(), [t.candidate for t in tried] + cut


def draw_split(X: np.ndarray, y: np.ndarray, classify: bool) -> Split:
    """One hold-out split, its seed drawn from the global RNG; stratified for a categorical
    target where every class has two rows, so both sides see each class."""
    seed = int(np.random.randint(np.iinfo(np.int32).max))
    stratify = y if classify and min(np.unique(y, return_counts=True)[1]) >= 2 else None
    X_fit, X_hold, y_fit, y_hold = train_test_split(
        X, y, test_size=HOLD_OUT, random_state=seed, stratify=stratify
    )
    return Split(X_fit, y_fit, X_hold, y_hold)


def regressors(split: Split) -> tuple[list[Tried], list[Candidate]]:
    """Linear, polynomial where allowed, boosting where the leftover test asks for it."""
    linear = fit_model(create_linear_regressor(), split)
    cheap = [(scored(create_linear_regressor, linear, split), linear, "linear")]
    cut: list[Candidate] = []
    if polynomial_allowed(linear):
        poly = fit_model(create_polynom_regressor(), split)
        cheap.append((scored(create_polynom_regressor, poly, split), poly, "polynomial"))
    else:
        cut.append(not_tried(create_polynom_regressor, MSE, TOO_MANY_COLUMNS))
    tried = [Tried(candidate, candidate.factory) for candidate, _, _ in cheap]
    _, best_model, name = min(cheap, key=lambda c: c[0].score)
    reason = no_leftover(best_model, split, name)
    if reason is not None:
        return tried, cut + [not_tried(create_hist_gradient_boost_regressor, MSE, reason)]
    return tried + [boosted(create_hist_gradient_boost_regressor, split, MSE)], cut


def classifiers(split: Split) -> tuple[list[Tried], list[Candidate]]:
    """Logistic, polynomial logistic where allowed, boosting unless held-out accuracy is
    already perfect (a classifier's residuals are no numbers to test)."""
    logistic = fit_model(logistic_classifier(), split)
    tried = [Tried(scored(create_logistic_regression_classifier, logistic, split),
                   logistic_classifier)]
    cut: list[Candidate] = []
    models = [logistic]
    if polynomial_allowed(logistic):
        poly = fit_model(polynomial_classifier(), split)
        models.append(poly)
        tried.append(Tried(
            scored(create_polynom_logistic_regression_classifier, poly, split),
            polynomial_classifier,
        ))
    else:
        cut.append(
            not_tried(create_polynom_logistic_regression_classifier, LOG_LOSS, TOO_MANY_COLUMNS)
        )
    if any(accuracy(m, split) == 1.0 for m in models):
        reason = "not tried: a logistic model already classifies every hold-out row right"
        return tried, cut + [not_tried(create_hist_gradient_boost_classifier, LOG_LOSS, reason)]
    return tried + [boosted(create_hist_gradient_boost_classifier, split, LOG_LOSS)], cut


def logistic_classifier() -> Model:
    """DoWhy's logistic candidate, with the iterations its candidate list gives it."""
    return create_logistic_regression_classifier(max_iter=LOGISTIC_ITERATIONS)


def polynomial_classifier() -> Model:
    return create_polynom_logistic_regression_classifier(max_iter=LOGISTIC_ITERATIONS)


TOO_MANY_COLUMNS = (
    f"not tried: more than {POLYNOMIAL_MAX_COLUMNS} encoded parent columns (DoWhy's rule)"
)


def fit_model(model: Model, split: Split) -> Model:
    model.fit(split.X_fit, split.y_fit)
    return model


def polynomial_allowed(fitted_linear: Model) -> bool:
    """DoWhy's polynomial rule, read off the fitted linear model: its coefficients are one
    per encoded parent column (DoWhy's wrapper encodes categorical parents)."""
    return int(np.shape(fitted_linear.sklearn_model.coef_)[-1]) <= POLYNOMIAL_MAX_COLUMNS


def hold_out_score(model: Model, split: Split) -> float:
    """Hold-out MSE for a regressor, hold-out log loss for a classifier (DoWhy's metrics)."""
    if hasattr(model, "predict_probabilities"):
        probabilities = model.predict_probabilities(split.X_hold)
        return float(metrics.log_loss(split.y_hold, probabilities, labels=model.classes))
    return float(metrics.mean_squared_error(split.y_hold, np.ravel(model.predict(split.X_hold))))


def accuracy(model: Model, split: Split) -> float:
    return float(np.mean(np.ravel(model.predict(split.X_hold)) == np.ravel(split.y_hold)))


def scored(factory: Callable[..., Model], model: Model, split: Split) -> Candidate:
    metric = LOG_LOSS if hasattr(model, "predict_probabilities") else MSE
    return Candidate(factory, hold_out_score(model, split), metric)


def not_tried(factory: Callable[..., Model], metric: str, reason: str) -> Candidate:
    """A candidate FAST did not fit: no score (NaN, listed as null), and why."""
    return Candidate(factory, float("nan"), metric, cut=reason)


def boosted(factory: Callable[..., Model], split: Split, metric: str) -> Tried:
    """Gradient boosting with early stopping; the chosen model keeps the rounds it found
    (no early stopping then, so its fits are deterministic and no longer)."""
    model = fit_model(factory(
        max_iter=ROUNDS, early_stopping=True, n_iter_no_change=PATIENCE,
        validation_fraction=VALIDATION,
        random_state=int(np.random.randint(np.iinfo(np.int32).max)),
    ), split)
    rounds = int(model.sklearn_model.n_iter_)
    cut = None if rounds >= ROUNDS else (
        f"stopped early: {rounds} of {ROUNDS} rounds, no validation gain in the last {PATIENCE}"
    )
    candidate = Candidate(factory, hold_out_score(model, split), metric, cut=cut)
    return Tried(candidate, lambda: factory(max_iter=rounds))


def no_leftover(fitted: Model, split: Split, name: str) -> str | None:
    """Why boosting is not worth trying after ``fitted`` (the best cheap model), or None
    where its residuals still show structure (``leftover``)."""
    residuals = np.ravel(split.y_fit) - np.ravel(fitted.predict(split.X_fit))
    columns = [np.ravel(fitted.predict(split.X_fit))] + numeric_columns(split.X_fit)
    p_value, share = leftover(residuals, columns, float(np.var(split.y_fit)))
    if p_value < SIGNIFICANCE and share >= MATERIAL:
        return None
    return (
        f"not tried: no sign of non-linearity left by the {name} model (residuals binned by each "
        f"parent and by the prediction: p = {p_value:.3g}, explaining {share:.2%} of the "
        f"variance; boosting is tried below p {SIGNIFICANCE:g} and above {MATERIAL:.1%})"
    )


def numeric_columns(X: np.ndarray) -> list[np.ndarray]:
    """The parent columns that are numbers (categorical parents are the linear model's
    one-hot columns already: their residual means are zero by construction)."""
    columns = []
    for j in range(X.shape[1]):
        try:
            columns.append(np.asarray(X[:, j], dtype=float))
        except (TypeError, ValueError):
            continue
    return columns


def leftover(
    residuals: np.ndarray, columns: list[np.ndarray], variance: float
) -> tuple[float, float]:
    """The strongest binned structure in ``residuals``: the smallest one-way ANOVA p-value
    over ``columns`` (Bonferroni-corrected), and the share of ``variance`` that column's
    bin means explain. A model that missed a curve, a threshold or (through its own
    prediction) a bend of the whole leaves residual means that differ between bins."""
    best_p, best_share = 1.0, 0.0
    for column in columns:
        groups = binned(residuals, column)
        if len(groups) < 2:
            continue
        p_value = float(stats.f_oneway(*groups).pvalue) * len(columns)
        if np.isfinite(p_value) and p_value < best_p:
            means = sum(len(g) * np.mean(g) ** 2 for g in groups) / len(residuals)
            best_p, best_share = p_value, float(means / variance) if variance > 0 else 0.0
    return min(best_p, 1.0), best_share


def binned(residuals: np.ndarray, column: np.ndarray) -> list[np.ndarray]:
    """``residuals`` grouped by quantile bins of ``column`` (fewer where values repeat)."""
    edges = np.unique(np.quantile(column, np.linspace(0, 1, BINS + 1))[1:-1])
    index = np.searchsorted(edges, column, side="right")
    groups = [residuals[index == b] for b in range(len(edges) + 1)]
    return [g for g in groups if len(g) >= 2]
