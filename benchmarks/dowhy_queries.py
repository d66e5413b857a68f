"""DoWhy's own query functions on the worker's model, for dowhy_side.py's ``setup``/``query``.

WORKER interpreter. ``Case`` fits the request with ``scm_worker.engine.fitting.fit_model``
exactly as the worker parses it (a seeded fit is deterministic: the worker's model, which
the driver checks by comparing summaries); ``timed`` calls DoWhy's function for a query
with the worker's own knobs (read from its declarations, ``scm_worker.api.signatures``, so
a changed default changes both sides; ``case["knobs"]`` overrides them, as ``--quick``
sends the same smaller knobs to the worker). ``NAME_interval`` is the question under
``gcm.confidence_intervals(gcm.fit_and_compute(...))`` with ``case["num_bootstrap"]``
replicates. Whether the answers equal the worker's is tested in tests/, not timed here.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

Answer = dict[str, float | None]


def default_knobs(method: str) -> dict[str, Any]:
    """The worker's defaults for ``method``'s sample-count knobs (those with a limit), but
    the bootstrap's replicates (``num_bootstrap``: ``case["num_bootstrap"]``)."""
    from scm_worker.api.methods import rpc
    from scm_worker.api.signatures import SAMPLE_QUERY, UNCERTAINTY

    if method == "sample":
        return {p.name: p.default for p in SAMPLE_QUERY if p.name == "num_samples"}
    declared = rpc.methods(test_methods=False)[method].params
    bootstrap = {p.name for p in UNCERTAINTY}
    return {p.name: p.default for p in declared.params
            if p.limit is not None and p.name not in bootstrap}


def rows(value: dict[str, list[Any]], nodes: tuple[str, ...], field: str) -> pd.DataFrame:
    """Rows as the worker turns a request's rows into a DataFrame (same floats, same order)."""
    from scm_worker.checks import parse_traces
    from scm_worker.engine.frames import to_frame
    from scm_worker.limits import Limits

    return to_frame(parse_traces(value, nodes, Limits(), field=field)).data


class Case:
    """The fitted model and every input the queries take, as DoWhy takes them."""

    def __init__(self, case: dict[str, Any]) -> None:
        from scm_worker.checks import parse_fit_request
        from scm_worker.engine.fitting import fit_model
        from scm_worker.engine.frames import to_frame
        from scm_worker.jsonio import json_object
        from scm_worker.limits import Limits

        graph, columns, config = parse_fit_request(
            case["graph"], case["traces"], case["config"], Limits()
        )
        started = time.perf_counter()
        self.model = fit_model(graph, to_frame(columns), config, os.cpu_count() or 1)
        self.fit_seconds = time.perf_counter() - started
        self.summary = json.loads(json.dumps(json_object(self.model.summary)))
        nodes = graph.nodes
        self.target: str = case["target"]
        self.source: str = case["source"]
        self.observed = rows(case["observed"], nodes, "observed")
        self.anomalous = rows(case["anomalous"], nodes, "rows")
        self.old = rows(case["old"], nodes, "old")
        self.new = rows(case["new"], nodes, "new")
        self.nodes = list(nodes)
        self.overrides: dict[str, dict[str, int]] = case.get("knobs", {})
        self.num_bootstrap: int = case.get("num_bootstrap", 20)

    def knobs(self, method: str) -> dict[str, Any]:
        """The worker's defaults, and the knobs the driver sent to both sides (``--quick``)."""
        return {**default_knobs(method), **self.overrides.get(method, {})}

    def upstream(self, scm: Any) -> Any:
        """The target and its ancestors: the nodes the worker's anomaly answer covers.

        DoWhy's anomaly functions reconstruct and score every node of the model they are
        given; on a graph where the target has every other node as an ancestor (the
        benchmark picks such a target when there is one) this is the whole model.
        """
        from dowhy import gcm

        graph = scm.graph
        keep = nx.ancestors(graph, self.target) | {self.target}
        if len(keep) == len(graph):
            return scm
        return gcm.InvertibleStructuralCausalModel(graph.subgraph(keep).copy())


def set_value(value: float) -> Any:
    return lambda _x: value


#: the interval rows' confidence level (the driver's CONFIDENCE) and fit_and_compute's default
CONFIDENCE = 0.95
SUBSET_FRACTION = 0.75


def bootstrapped(case: Case, question: str) -> Answer:
    """``gcm.confidence_intervals(gcm.fit_and_compute(...))`` over the question, as DoWhy's
    docs show it: each replicate refits clones of the fitted model's mechanisms on a subset
    of the fit rows and asks again (``run_query`` on the clone, components as scalars)."""
    from dowhy import gcm

    assert case.model.data is not None
    medians, intervals = gcm.confidence_intervals(
        gcm.fit_and_compute(
            lambda refitted: run_query(case, question, refitted),
            case.model.scm,
            case.model.data,
            bootstrap_data_subset_size_fraction=SUBSET_FRACTION,
        ),
        confidence_level=CONFIDENCE,
        num_bootstrap_resamples=case.num_bootstrap,
    )
    answer: Answer = {}
    for key, median in medians.items():
        low, high = intervals[key]
        answer.update({f"median[{key}]": float(median), f"lo[{key}]": float(low),
                       f"hi[{key}]": float(high)})
    return answer


def run_query(case: Case, query: str, scm: Any = None) -> Answer:
    """DoWhy's own function for ``query`` on the fitted model (or ``scm``, a refitted clone),
    with the worker's knobs."""
    from dowhy import gcm
    from scm_worker.engine.questions import ANOMALY_REFERENCE_SAMPLES, CHANGE_MEASURES

    if query.endswith("_interval"):
        return bootstrapped(case, query.removesuffix("_interval"))
    scm = case.model.scm if scm is None else scm
    target, source = case.target, case.source
    if query == "effect":
        value = gcm.average_causal_effect(
            scm,
            target,
            {source: set_value(1.0)},
            {source: set_value(0.0)},
            num_samples_to_draw=case.knobs("effect")["num_samples"],
        )
        return {"effect": float(value)}
    if query == "arrow_strength":
        strengths = gcm.arrow_strength(
            scm,
            target,
            n_jobs=os.cpu_count() or 1,
            num_samples_conditional=case.knobs("arrow_strength")["num_samples_conditional"],
        )
        return {str(parent): float(v) for (parent, _), v in strengths.items()}
    if query == "influence":
        contributions = gcm.intrinsic_causal_influence(scm, target, **case.knobs("influence"))
        return {str(node): float(v) for node, v in contributions.items()}
    if query == "anomaly":
        upstream = case.upstream(scm)
        data = case.anomalous[list(upstream.graph.nodes)]
        scores = gcm.anomaly_scores(
            upstream,
            data,
            num_samples_unconditional=ANOMALY_REFERENCE_SAMPLES,
            num_samples_conditional=ANOMALY_REFERENCE_SAMPLES,
        )
        attributions = gcm.attribute_anomalies(
            upstream,
            target,
            data,
            num_distribution_samples=case.knobs("anomaly")["num_distribution_samples"],
        )
        return {**per_row("score", scores), **per_row("attribution", attributions)}
    if query == "distribution_change":
        attributions = gcm.distribution_change(
            scm,
            case.old,
            case.new,
            target,
            num_samples=case.knobs("distribution_change")["num_samples"],
            difference_estimation_func=CHANGE_MEASURES["mean"],
        )
        return {str(node): float(v) for node, v in attributions.items()}
    return sample_answer(draw(case, query))


def draw(case: Case, kind: str) -> pd.DataFrame:
    from dowhy import gcm

    intervention = {case.source: set_value(1.0)}
    if kind == "sample_observational":
        return gcm.draw_samples(case.model.scm, case.knobs("sample")["num_samples"])
    if kind == "sample_interventional":
        return gcm.interventional_samples(
            case.model.scm, intervention, num_samples_to_draw=case.knobs("sample")["num_samples"]
        )
    if kind == "sample_counterfactual":
        return gcm.counterfactual_samples(case.model.scm, intervention, observed_data=case.observed)
    raise ValueError(f"unknown query {kind!r}")


def per_row(prefix: str, values: dict[Any, Any]) -> Answer:
    return {
        f"{prefix}[{node}][{i}]": finite_or_none(v)
        for node, column in values.items()
        for i, v in enumerate(np.ravel(column))
    }


def sample_answer(samples: pd.DataFrame) -> Answer:
    """The statistics the worker's ``sample`` returns that the benchmark compares."""
    answer: Answer = {}
    for node in samples.columns:
        column = samples[node].to_numpy(dtype=float)
        answer[f"mean[{node}]"] = float(column.mean())
        answer[f"std[{node}]"] = float(column.std())
    return answer


def finite_or_none(value: Any) -> float | None:
    """As the worker writes a value (a non-finite one is ``null``)."""
    number = float(value)
    return number if np.isfinite(number) else None


def timed(case: Case, query: str, seed: int) -> float:
    """Seconds of DoWhy's call for ``query``, its global RNG seeded first (as the worker does)."""
    from dowhy.gcm.util.general import set_random_seed

    started = time.perf_counter()
    set_random_seed(seed)
    run_query(case, query)
    return time.perf_counter() - started
