"""Causal questions on a fitted model: effects, arrow strengths, influence, anomalies, change.

Each function takes a stored model and checked params (sample-count knobs have their
defaults and limits in signatures.py) and returns plain JSON. DoWhy errors become -32005
and unsupported questions -32007, naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.gcm.anomaly import conditional_anomaly_scores
from dowhy.gcm.anomaly_scorers import RescaledMedianCDFQuantileScorer
from dowhy.graph import get_ordered_predecessors

from ..errors import UNSUPPORTED_QUERY, WorkerError, invalid_params
from . import draws
from .fitting import FittedModel, dowhy_errors
from .frames import decode_values
from .interventions import Intervention
from .mechanisms import require_invertible
from .predictions import tabulated

#: samples behind each anomaly score (``gcm.anomaly_scores``' default, conditional and
#: unconditional)
ANOMALY_REFERENCE_SAMPLES = 10_000

def require_node(model: FittedModel, node: Any, field: str = "target") -> str:
    if node not in model.kinds:
        raise invalid_params(field, f"unknown node {node!r}")
    return str(node)


def unsupported(node: str, message: str, query: str) -> WorkerError:
    return WorkerError(UNSUPPORTED_QUERY, message, {"node": node, "query": query})


# -- effect ------------------------------------------------------------------------


def effect(
    model: FittedModel,
    target: str,
    alternative: list[Intervention],
    reference: list[Intervention],
    observed: pd.DataFrame | None,
    num_samples: int,
) -> dict[str, Any]:
    """Average causal effect E[target | alternative] − E[target | reference]; its interval
    (``confidence``) is the bootstrap's (bootstrap.py), ``null`` without one."""
    estimate, positive = _effect_estimator(
        model, target, alternative, reference, observed, num_samples
    )
    with dowhy_errors("effect"):
        value = float(estimate())
    result: dict[str, Any] = {"effect": value, "interval": None, "target": target}
    if positive is not None:
        result["positive_class"] = positive
    return result


def _effect_estimator(
    model: FittedModel,
    target: str,
    alternative: list[Intervention],
    reference: list[Intervention],
    observed: pd.DataFrame | None,
    num_samples: int,
) -> tuple[Callable[[], float], Any]:
    """One estimate per call: the target's mean (a two-class target: the rate of its second
    class) under the alternative arm minus under the reference arm.

    ``gcm.average_causal_effect`` samples each arm with ``gcm.interventional_samples``,
    which draws the whole model and then redraws what the arm reaches. Here each arm is
    one pass of the worker's sampler over the target and its ancestors only (nothing else
    can move the target), on the observed rows when given, as DoWhy uses them.
    """
    positive = _positive_class(model, target)
    upstream = nx.ancestors(model.scm.graph, target) | {target}
    order = [node for node in nx.topological_sort(model.scm.graph) if node in upstream]

    def arm(interventions: list[Intervention]) -> float:
        drawn = draws.interventional_columns(
            model.scm, interventions, model.kinds, num_samples, order, observed
        )[target]
        return float(np.mean(drawn if positive is None else drawn == positive))

    decoded = None if positive is None else decode_values(
        np.array([positive], dtype=object), model.kinds[target]
    )[0]
    return (lambda: arm(alternative) - arm(reference)), decoded


def _positive_class(model: FittedModel, target: str) -> Any:
    """None for a numeric target; a two-class target's second class (its rate is averaged)."""
    if model.kinds[target] == "numeric":
        return None
    classes = model.categories.get(target, [])
    if len(classes) != 2:
        raise unsupported(
            target,
            f"An average effect needs a numeric or two-class target; {target!r} has "
            f"{len(classes)} classes (DoWhy's average_causal_effect averages numbers)",
            "effect",
        )
    return classes[1]


# -- arrow strength and influence ----------------------------------------------------


def arrow_strength(
    model: FittedModel, target: str, num_samples_conditional: int, *, n_jobs: int
) -> dict[str, Any]:
    if not model.graph.parents(target):
        raise invalid_params("target", f"{target!r} is a root node: it has no incoming arrows")
    with dowhy_errors("arrow_strength"):
        strengths = gcm.arrow_strength(
            tabulated(model.scm), target,
            num_samples_conditional=num_samples_conditional, n_jobs=n_jobs,
        )
    return {
        "target": target,
        "strengths": {str(parent): float(v) for (parent, _), v in strengths.items()},
    }


def influence(
    model: FittedModel, target: str, num_training_samples: int, num_samples_randomization: int,
    num_samples_baseline: int,
) -> dict[str, Any]:
    require_invertible_upstream(model, target, "influence")
    with dowhy_errors("influence"):
        contributions = gcm.intrinsic_causal_influence(
            tabulated(model.scm), target,
            num_training_samples=num_training_samples,
            num_samples_randomization=num_samples_randomization,
            num_samples_baseline=num_samples_baseline,
        )
    return {
        "target": target,
        "influence": {str(node): float(v) for node, v in contributions.items()},
    }


# -- anomalies and distribution change -----------------------------------------------


def anomaly(
    model: FittedModel, target: str, rows: pd.DataFrame, num_distribution_samples: int
) -> dict[str, Any]:
    require_invertible_upstream(model, target, "anomaly attribution")
    upstream = upstream_model(model, target)
    scored = [
        node
        for node in model.graph.nodes
        if node in upstream.graph and model.kinds[node] == "numeric"
    ]
    with dowhy_errors("anomaly"):
        scores = {node: node_anomaly_scores(upstream, node, rows) for node in scored}
        attributions = gcm.attribute_anomalies(
            upstream,
            target,
            rows[list(upstream.graph.nodes)],
            num_distribution_samples=num_distribution_samples,
        )
    return {
        "target": target,
        "scores": {str(node): np.ravel(v).astype(float).tolist() for node, v in scores.items()},
        "attributions": {
            str(node): np.ravel(v).astype(float).tolist() for node, v in attributions.items()
        },
    }


def upstream_model(model: FittedModel, target: str) -> gcm.InvertibleStructuralCausalModel:
    """The target and its ancestors, sharing the fitted mechanisms (nothing is refitted;
    predictions go through lookup tables, as in ``tabulated``).

    DoWhy's anomaly functions reconstruct the noise of, and score, every node of the
    model they are given, and a classifier node has neither noise nor a numeric score,
    however unrelated to the target. Ancestors' parents are ancestors, so this
    sub-model is complete: the target's anomaly depends on nothing else.
    """
    nodes = nx.ancestors(model.scm.graph, target) | {target}
    return tabulated(model.scm, model.scm.graph.subgraph(nodes))


def node_anomaly_scores(
    scm: gcm.StructuralCausalModel, node: str, rows: pd.DataFrame
) -> np.ndarray:
    """One node's part of ``gcm.anomaly_scores``, with DoWhy's scorer and sample counts.

    ``gcm.anomaly_scores`` scores every node of the graph, and its quantile scorer
    fails on a categorical node (a categorical root may be among the ancestors): the
    worker scores the numeric nodes among the target and its ancestors.
    """
    mechanism = scm.causal_mechanism(node)
    parents = get_ordered_predecessors(scm.graph, node)
    if not parents:
        scorer = RescaledMedianCDFQuantileScorer()
        scorer.fit(mechanism.draw_samples(ANOMALY_REFERENCE_SAMPLES))
        return np.asarray(scorer.score(rows[node].to_numpy()))
    return np.asarray(conditional_anomaly_scores(
        rows[parents].to_numpy(), rows[node].to_numpy(), mechanism,
        RescaledMedianCDFQuantileScorer, ANOMALY_REFERENCE_SAMPLES,
    ))


#: how the change in the target's distribution is measured (``measure``: signatures.CHANGE_MEASURES)
CHANGE_MEASURES = {
    "mean": lambda old, new: float(np.mean(new) - np.mean(old)),
    "std": lambda old, new: float(np.std(new) - np.std(old)),
    "kl": None,  # DoWhy's default: auto-estimated KL divergence
}


def distribution_change(
    model: FittedModel,
    target: str,
    old: pd.DataFrame,
    new: pd.DataFrame,
    num_samples: int,
    measure: str,
) -> dict[str, Any]:
    """Refits each mechanism on old and new rows (DoWhy clones the model) and attributes the change.

    With ``measure: "mean"`` the attributions add up to the change of the target's mean.
    DoWhy's own query, its mechanism-change tests included (one kernel test per node of
    the target's subgraph, one after another, most of its time), on the tabulated view.
    """
    options: dict[str, Any] = {"num_samples": num_samples}
    if CHANGE_MEASURES[measure] is not None:
        options["difference_estimation_func"] = CHANGE_MEASURES[measure]
    with dowhy_errors("distribution_change"):
        attributions = gcm.distribution_change(tabulated(model.scm), old, new, target, **options)
    return {"target": target, "measure": measure,
            "attributions": {str(node): float(v) for node, v in attributions.items()}}


def require_invertible_upstream(model: FittedModel, target: str, query: str) -> None:
    """Noise reconstruction needs invertible mechanisms on the target and its ancestors."""
    upstream = sorted(nx.ancestors(model.scm.graph, target) | {target})
    require_invertible(model.scm, upstream, query, f"{target!r} and its ancestors")

