"""The worker's samplers: interventional draws in one pass, counterfactuals from observed noise.

Both take the worker's declarative interventions (interventions.py), so a hard
intervention is a constant column and a soft one a numpy operation, instead of DoWhy's
callable mapped over the values one by one. ``sample`` (sampling.py) and ``effect``
(questions.py) draw through here.
"""

from __future__ import annotations

from collections.abc import Collection

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.graph import get_ordered_predecessors

from ..columns import ColumnKind
from .dowhy_api import validate_causal_dag
from .interventions import Intervention
from .predictions import predict


def interventional_samples(
    scm: gcm.StructuralCausalModel,
    interventions: list[Intervention],
    kinds: dict[str, ColumnKind],
    num_samples: int,
    nodes: Collection[str] | None = None,
    observed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """DoWhy's interventional distribution, drawing each node once (only ``nodes``, if given).

    ``gcm.interventional_samples`` first samples the whole model observationally, then
    redraws every node downstream of an intervention (fresh noise, intervened parents),
    discarding the first draw of those nodes: intervening on a root samples the model
    twice. Here each node is drawn once, in topological order, from its mechanism given
    the parent values drawn so far, and the intervention is applied to the draw as DoWhy
    applies it; a hard intervention's node is not drawn at all (its draw would be
    discarded). ``nodes`` must be closed under ancestors (a target and its ancestors,
    for ``effect``). With ``observed`` rows (``average_causal_effect``'s observed_data),
    nodes the interventions do not reach keep their observed values and intervened roots
    start from them, as ``gcm.interventional_samples`` does with observed data. The
    joint distribution is DoWhy's; the random stream is not (a seed reproduces this
    function, not DoWhy's), except without interventions, where it is ``gcm.draw_samples``.
    """
    order = [n for n in nx.topological_sort(scm.graph) if nodes is None or n in nodes]
    columns = interventional_columns(scm, interventions, kinds, num_samples, order, observed)
    return _frame(columns, order, num_samples if observed is None else len(observed))


def interventional_columns(
    scm: gcm.StructuralCausalModel,
    interventions: list[Intervention],
    kinds: dict[str, ColumnKind],
    num_samples: int,
    order: list[str],
    observed: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:
    """``interventional_samples``' columns, node by node in ``order`` (topological), without
    the DataFrame: ``effect`` reads one column of each arm."""
    validate_causal_dag(scm.graph)
    by_node = {i.node: i for i in interventions}
    affected = _affected(scm.graph, by_node)
    rows = num_samples if observed is None else len(observed)
    columns: dict[str, np.ndarray] = {}
    for node in order:
        intervention = by_node.get(node)
        if observed is not None and node not in affected:
            columns[node] = observed[node].to_numpy()
        elif intervention is not None and intervention.type == "hard":
            columns[node] = intervention.constant(rows, kinds[node])
        else:
            drawn = _draw_node(scm, node, columns, rows, observed)
            columns[node] = drawn if intervention is None else intervention.transform_values(drawn)
    return columns


def observed_reads(
    graph: nx.DiGraph, interventions: list[Intervention], order: list[str]
) -> list[str]:
    """The nodes of ``order`` whose observed values ``interventional_columns`` reads: those
    the interventions do not reach, and the intervened roots that are not set to a value
    (a soft intervention transforms the observed value). A node the interventions reach
    is drawn afresh from its parents, a hard-intervened one is its value."""
    by_node = {i.node: i for i in interventions}
    affected = _affected(graph, by_node)
    return [
        node for node in order
        if node not in affected
        or (graph.in_degree(node) == 0 and by_node[node].type != "hard")
    ]


def _draw_node(
    scm: gcm.StructuralCausalModel, node: str, columns: dict[str, np.ndarray], rows: int,
    observed: pd.DataFrame | None,
) -> np.ndarray:
    """One node's fresh draw given its parents' columns (a root: new draws, or observed)."""
    parents = get_ordered_predecessors(scm.graph, node)
    if not parents:
        if observed is not None:
            return np.asarray(observed[node].to_numpy())
        return np.asarray(scm.causal_mechanism(node).draw_samples(rows)).reshape(-1)
    mechanism, matrix = scm.causal_mechanism(node), _parent_matrix(columns, parents)
    if type(mechanism) in PLAIN_POST_NONLINEAR:
        return _post_nonlinear_draw(mechanism, matrix)
    return np.asarray(mechanism.draw_samples(matrix)).reshape(-1)


def _post_nonlinear_draw(mechanism: gcm.PostNonlinearModel, parents: np.ndarray) -> np.ndarray:
    """``mechanism.draw_samples(parents)``: g(f(parents) + N) with N drawn as DoWhy draws it,
    and f through predictions.py (the same numbers, looked up where a table applies)."""
    noise = np.asarray(mechanism.draw_noise_samples(parents.shape[0])).reshape(-1, 1)
    predicted = predict(mechanism.prediction_model, parents)
    drawn = mechanism.invertible_function.evaluate(predicted + noise)
    return np.asarray(drawn).reshape(-1)


def counterfactual_samples(
    scm: gcm.StructuralCausalModel,
    interventions: list[Intervention],
    kinds: dict[str, ColumnKind],
    observed: pd.DataFrame,
) -> pd.DataFrame:
    """``gcm.counterfactual_samples`` on observed rows, reconstructing only the noise it uses.

    DoWhy reconstructs every node's noise from the observed rows and then re-evaluates
    every node from that noise: two predictions per node. A node the interventions do not
    reach comes back as its observed value (its noise, added back to the same
    prediction), so here only the intervened nodes and their descendants are computed,
    from the same mechanism calls (``estimate_noise`` on the observed rows, ``evaluate``
    on the counterfactual parents), and a hard-intervened node is its value.
    """
    validate_causal_dag(scm.graph)
    order = list(nx.topological_sort(scm.graph))
    by_node = {i.node: i for i in interventions}
    affected = _affected(scm.graph, by_node)
    rows = len(observed)
    columns = {node: observed[node].to_numpy() for node in order}
    for node in order:
        intervention = by_node.get(node)
        if node not in affected:
            continue
        if intervention is not None and intervention.type == "hard":
            columns[node] = intervention.constant(rows, kinds[node])
            continue
        value = _counterfactual_node(scm, node, columns, observed)
        columns[node] = value if intervention is None else intervention.transform_values(value)
    return _frame(columns, order, rows)


def _counterfactual_node(
    scm: gcm.StructuralCausalModel, node: str, columns: dict[str, np.ndarray],
    observed: pd.DataFrame,
) -> np.ndarray:
    """The node's value from its observed noise and its counterfactual parents."""
    parents = get_ordered_predecessors(scm.graph, node)
    if not parents:
        return np.asarray(observed[node].to_numpy())  # a root's noise is its value
    mechanism = scm.causal_mechanism(node)
    seen, counterfactual = observed[parents].to_numpy(), _parent_matrix(columns, parents)
    if type(mechanism) in PLAIN_POST_NONLINEAR and seen.dtype == counterfactual.dtype:
        return _post_nonlinear_counterfactual(mechanism, observed[node].to_numpy(), seen,
                                              counterfactual)
    noise = mechanism.estimate_noise(observed[node].to_numpy(), seen)
    value = mechanism.evaluate(counterfactual, np.asarray(noise).reshape(-1))
    return np.asarray(value).reshape(-1)


#: mechanisms whose noise and evaluation are PostNonlinearModel's own (DiscreteAdditiveNoiseModel
#: rounds, so it keeps its own methods)
PLAIN_POST_NONLINEAR = (gcm.PostNonlinearModel, gcm.AdditiveNoiseModel)


def _post_nonlinear_counterfactual(
    mechanism: gcm.PostNonlinearModel, target: np.ndarray, seen: np.ndarray,
    counterfactual: np.ndarray,
) -> np.ndarray:
    """``evaluate(counterfactual, estimate_noise(target, seen))`` with one prediction call.

    Y = g(f(X) + N): the noise is g⁻¹(y) − f(x_seen) and the counterfactual
    g(f(x_cf) + N), the arithmetic of DoWhy's two methods. Both f calls go into one
    ``predict`` over the stacked rows (rows are predicted independently, so the numbers
    are the same): a boosted model pays its per-tree cost once instead of twice, or one
    lookup (predictions.py).
    """
    rows = len(target)
    predicted = predict(mechanism.prediction_model, np.vstack([seen, counterfactual]))
    function = mechanism.invertible_function
    noise = function.evaluate_inverse(target.reshape(-1, 1)) - predicted[:rows]
    return np.asarray(function.evaluate(predicted[rows:] + noise)).reshape(-1)


def _affected(graph: nx.DiGraph, interventions: Collection[str]) -> set[str]:
    """The intervened nodes and everything downstream of them."""
    reached = set(interventions)
    for node in interventions:
        reached |= nx.descendants(graph, node)
    return reached


def _parent_matrix(columns: dict[str, np.ndarray], parents: list[str]) -> np.ndarray:
    """The parents' columns as one matrix, as DoWhy reads them from its DataFrame: numbers
    stay numbers, and mixed kinds (a category among them) make an object matrix."""
    chosen = [columns[p] for p in parents]
    if all(c.dtype.kind in "fiub" for c in chosen):  # one parent: a view, not a copy
        return chosen[0].reshape(-1, 1) if len(chosen) == 1 else np.column_stack(chosen)
    return np.asarray(pd.DataFrame(dict(zip(parents, chosen, strict=True))).to_numpy())


def _frame(columns: dict[str, np.ndarray], order: list[str], rows: int) -> pd.DataFrame:
    """The columns as a DataFrame, without copying them: pandas would otherwise stack them
    into one block, which for a million rows × 20 nodes took 1.5-3 s, twice the draw."""
    return pd.DataFrame({node: columns[node] for node in order}, index=pd.RangeIndex(rows),
                        copy=False)
