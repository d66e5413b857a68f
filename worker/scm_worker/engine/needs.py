"""Which columns a question reads of the rows it is given (``rows``, ``observed``,
``old``/``new``): only those are required, decoded and checked; the others are ignored
and named in the answer's ``metadata.ignored_columns`` (services.py).

DoWhy reads its DataFrames by column name, so a wider frame than the model's nodes is
fine to it; these are the columns each of the worker's answers actually touches.
"""

from __future__ import annotations

import networkx as nx

from .draws import observed_reads
from .interventions import Intervention


def upstream(graph: nx.DiGraph, target: str) -> list[str]:
    """The target and its ancestors, in topological order: all that anomaly attribution
    (the worker scores and attributes on that sub-model) and ``gcm.distribution_change``
    (it fits and samples ``node_connected_subgraph_view``, the same nodes) read."""
    wanted = nx.ancestors(graph, target) | {target}
    return [node for node in nx.topological_sort(graph) if node in wanted]


def effect(
    graph: nx.DiGraph, target: str, alternative: list[Intervention],
    reference: list[Intervention],
) -> list[str]:
    """What ``effect``'s two arms read of the observed rows: each arm is drawn over the
    target and its ancestors (questions.effect), keeping the observed values of what the
    arm's interventions do not reach (``draws.observed_reads``)."""
    order = upstream(graph, target)
    read = set(observed_reads(graph, alternative, order)) | set(
        observed_reads(graph, reference, order)
    )
    return [node for node in order if node in read]


def sample(graph: nx.DiGraph, kind: str, interventions: list[Intervention]) -> list[str]:
    """What a ``sample`` of ``kind`` reads of its observed rows.

    Counterfactual: every node, as ``gcm.counterfactual_samples`` does (it reconstructs
    the noise of every node from the observed rows, ``compute_noise_from_data``), and
    the unaffected nodes come back as observed. Interventional: the nodes the
    interventions do not reach (they keep their observed values) and the soft-intervened
    roots (the intervention transforms their observed values), as in
    ``gcm.interventional_samples(observed_data=…)``; the nodes it redraws need no column.
    """
    order = list(nx.topological_sort(graph))
    return order if kind == "counterfactual" else observed_reads(graph, interventions, order)
