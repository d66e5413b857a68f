"""Fitted DoWhy mechanisms: described as JSON (empirical, linear, nonlinear, classifier), and
their point predictions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from dowhy import gcm
from dowhy.gcm.causal_mechanisms import PostNonlinearModel

from ..columns import ColumnKind
from ..errors import UNSUPPORTED_QUERY, WorkerError
from .frames import decode_classes


def describe(
    mechanism: Any, parents: list[str], kinds: dict[str, ColumnKind], node: str
) -> dict[str, Any]:
    if not parents:
        if isinstance(mechanism, gcm.EmpiricalDistribution):
            return {"type": "empirical"}
        if isinstance(mechanism, gcm.ScipyDistribution):
            return _describe_distribution(mechanism)
        return {"type": "distribution", "model": type(mechanism).__name__}
    if isinstance(mechanism, gcm.ClassifierFCM):
        model = mechanism.classifier_model
        return {
            "type": "classifier",
            "parents": parents,
            "model": model_name(getattr(model, "sklearn_model", model)),
            "classes": decode_classes(model.classes, kinds[node]),
        }
    if isinstance(mechanism, PostNonlinearModel):
        return _describe_regression(mechanism, parents, kinds)
    return {"type": "other", "parents": parents, "model": type(mechanism).__name__}


def _describe_distribution(mechanism: gcm.ScipyDistribution) -> dict[str, Any]:
    """A fitted scipy distribution: its scipy name and fitted parameters (``loc``, ``scale``
    and its shapes, by scipy's names)."""
    return {
        "type": "distribution",
        "model": mechanism.scipy_distribution.name,
        "params": {k: float(np.ravel(v)[0]) for k, v in mechanism.parameters.items()},
    }


def _describe_regression(
    mechanism: PostNonlinearModel, parents: list[str], kinds: dict[str, ColumnKind]
) -> dict[str, Any]:
    sklearn_model = getattr(mechanism.prediction_model, "sklearn_model", mechanism.prediction_model)
    described: dict[str, Any] = {"parents": parents, "model": model_name(sklearn_model)}
    if hasattr(sklearn_model, "coef_") and not hasattr(sklearn_model, "steps"):
        coefficients = np.ravel(sklearn_model.coef_).tolist()
        intercept = float(np.ravel(getattr(sklearn_model, "intercept_", 0.0))[0])
        described = {
            "type": "linear",
            **described,
            "params": {"coefficients": coefficients, "intercept": intercept},
        }
        if any(kinds[p] != "numeric" for p in parents):
            # One-hot encoded parents: one coefficient per encoded column, not per parent.
            described["params"]["encoded_parents"] = True
    else:
        described = {"type": "nonlinear", **described}
    if isinstance(mechanism, gcm.DiscreteAdditiveNoiseModel):
        described["discrete"] = True
    return described


def model_name(model: Any) -> str:
    """``HistGradientBoostingRegressor``; pipelines as ``PolynomialFeatures+LinearRegression``."""
    steps = getattr(model, "steps", None)
    if steps:
        return "+".join(type(step).__name__ for _, step in steps)
    return type(model).__name__


def predict(mechanism: Any, parent_values: np.ndarray) -> np.ndarray:
    """The mechanism's point prediction: noise at zero, or the most likely class."""
    if isinstance(mechanism, gcm.ClassifierFCM):
        model = mechanism.classifier_model
        probabilities = model.predict_probabilities(parent_values)
        classes: np.ndarray = np.asarray(model.classes, dtype=object)
        chosen: np.ndarray = classes[np.argmax(probabilities, axis=1)]
        return chosen
    zero_noise = np.zeros((parent_values.shape[0], 1))
    return np.ravel(mechanism.evaluate(parent_values, zero_noise))


def is_invertible(mechanism: Any) -> bool:
    return isinstance(mechanism, gcm.causal_mechanisms.InvertibleFunctionalCausalModel)


def require_invertible(
    scm: gcm.StructuralCausalModel, nodes: Iterable[str], query: str, scope: str
) -> None:
    """Queries that reconstruct noise (counterfactuals, influence, attribution) need
    invertible mechanisms on the non-root ``nodes``; -32007 names the first that is not."""
    for node in nodes:
        mechanism = scm.causal_mechanism(node)
        if scm.graph.in_degree(node) and not is_invertible(mechanism):
            name = type(mechanism).__name__
            raise WorkerError(
                UNSUPPORTED_QUERY,
                f"{query} needs invertible (additive-noise) mechanisms on {scope}; node {node!r} "
                f"has a {name}, which is not invertible (categorical nodes get a classifier "
                "mechanism)",
                {"node": node, "mechanism": name, "query": query},
            )
