"""Mechanism selection node by node: DoWhy's own ``select_model``, run concurrently.

``gcm.auto.assign_causal_mechanisms`` selects one node after another and parallelises
only over the two or three candidate models of a node, which keeps about one core busy.
Selections are independent given the data, so here each non-root node is one joblib
task (one thread inside it), and each task seeds the global RNG from ``(seed, node
index)`` before calling DoWhy, so a seeded fit makes the same choices at any
concurrency. The mechanism a choice becomes is DoWhy's rule: classifier → ClassifierFCM,
integer-valued target → DiscreteAdditiveNoiseModel, else AdditiveNoiseModel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.gcm.auto import AssignmentQuality, select_model
from dowhy.gcm.ml import ClassificationModel, create_linear_regressor
from dowhy.gcm.util.general import is_discrete, set_random_seed
from dowhy.graph import get_ordered_predecessors
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

NodeDone = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Choice:
    node: str
    model: Any
    performances: list[tuple[Any, float, str]]


def node_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def select_mechanisms(
    scm: gcm.StructuralCausalModel,
    train: pd.DataFrame,
    quality: AssignmentQuality,
    seed: int,
    n_jobs: int,
    linear_tolerance: float,
    on_node_done: NodeDone | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Assign a mechanism to every node; returns each regression node's scored candidates."""
    order = list(nx.topological_sort(scm.graph))
    tasks = []
    for index, node in enumerate(order):
        parents = get_ordered_predecessors(scm.graph, node)
        if not parents:
            scm.set_causal_mechanism(node, gcm.EmpiricalDistribution())
        else:
            X, y = train[parents].to_numpy(), train[node].to_numpy()
            tasks.append((node, X, y, node_seed(seed, index)))
    candidates: dict[str, list[dict[str, Any]]] = {}
    for done, choice in enumerate(_run(tasks, quality, n_jobs), start=1):
        y = train[choice.node].to_numpy()
        scm.set_causal_mechanism(choice.node, mechanism_for(choice, y, linear_tolerance))
        candidates[choice.node] = scored_candidates(choice)
        if on_node_done is not None:
            on_node_done(choice.node, done, len(tasks))
    return {node: candidates[node] for node in order if candidates.get(node)}


def _run(tasks: list[tuple[str, np.ndarray, np.ndarray, int]], quality: AssignmentQuality, n_jobs: int) -> Any:
    if n_jobs <= 1 or len(tasks) <= 1:
        return (_select_node(*task, quality) for task in tasks)
    return Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_select_node)(*task, quality) for task in tasks
    )


def _select_node(node: str, X: np.ndarray, y: np.ndarray, seed: int, quality: AssignmentQuality) -> Choice:
    """One node's selection, single-threaded, from its own seed (runs in a loky worker)."""
    gcm.config.set_default_n_jobs(1)
    with threadpool_limits(limits=1):
        set_random_seed(seed)
        model, performances = select_model(X, y, quality)
    return Choice(node, model, performances)


def mechanism_for(choice: Choice, y: np.ndarray, linear_tolerance: float) -> Any:
    model = choice.model
    if isinstance(model, ClassificationModel):
        return gcm.ClassifierFCM(model)
    if prefer_linear(choice.performances, float(np.var(y.astype(float))), linear_tolerance):
        model = create_linear_regressor()
    return gcm.DiscreteAdditiveNoiseModel(model) if is_discrete(y) else gcm.AdditiveNoiseModel(model)


def prefer_linear(performances: list[tuple[Any, float, str]], variance: float, tolerance: float) -> bool:
    """Parsimony: choose the linear model when it costs at most ``tolerance`` in R².

    DoWhy picks the lowest 5-fold MSE, so on truly linear data a polynomial wins about
    half the time by a hair (0.01022 vs 0.01021) and the coefficients are lost. Linear
    is kept when its CV MSE exceeds the best by at most ``tolerance`` × Var(node), i.e.
    when it loses at most ``tolerance`` of cross-validated R².
    """
    if not performances or performances[0][0] is create_linear_regressor:
        return False
    best = performances[0][1]
    linear = [score for factory, score, _ in performances if factory is create_linear_regressor]
    return bool(linear) and linear[0] <= best + tolerance * variance


def scored_candidates(choice: Choice) -> list[dict[str, Any]]:
    return [
        {"model": getattr(factory, "__name__", str(factory)).removeprefix("create_"), "score": float(score),
         "metric": metric}
        for factory, score, metric in choice.performances
    ]
