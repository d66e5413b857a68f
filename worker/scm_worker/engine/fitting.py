"""The fit pipeline: split, select mechanisms, fit, score on held-out rows, refit on all.

Model selection runs once, on the training rows; the chosen mechanisms are fitted on
the training rows for the held-out scores, then refitted on every row for the stored
model, so a fit request pays for selection exactly once. Non-root nodes go through all
of that node-parallel (``node_fitting``); roots are empirical distributions of all rows,
or the distributions the user set (``hand_set``), fitted on all rows.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.graph import get_ordered_predecessors

from ..cancellation import NEVER, CancelToken
from ..checks import FitConfig, Graph
from ..columns import ColumnKind
from ..errors import FIT_FAILED, INSUFFICIENT_DATA, WorkerError
from ..mechanism_specs import MechanismSpec
from ..versions import dowhy_version
from . import scoring
from .dowhy_api import (
    PARENTS_DURING_FIT,
    fit_causal_model_of_target,
    validate_causal_model_assignment,
)
from .frames import Frame
from .hand_set import root_mechanism
from .mechanism_choice import Override, scored_candidates
from .mechanisms import describe, predict
from .node_fitting import NodeFit, NodeTask, fit_nodes, node_seed, processes
from .node_reuse import NodeKeys, NodeRecord
from .predictions import table_bytes
from .quick_choice import FAST

log = logging.getLogger(__name__)

QUALITY = {
    "GOOD": gcm.auto.AssignmentQuality.GOOD,
    "BETTER": gcm.auto.AssignmentQuality.BETTER,
    "BEST": gcm.auto.AssignmentQuality.BEST,
    "FAST": FAST,  # the worker's own selection (quick_choice), not DoWhy's
}


Progress = Callable[..., None]


def _no_progress(stage: str, done: int, total: int, node: str | None = None) -> None:
    return None


@dataclass
class FittedModel:
    """A fitted SCM and what the worker needs to check later requests against it."""

    scm: gcm.InvertibleStructuralCausalModel
    graph: Graph
    kinds: dict[str, ColumnKind]
    categories: dict[str, list[Any]]
    config: FitConfig
    num_samples: int
    summary: dict[str, Any]
    created_at: float = field(default_factory=time.time)
    #: the complete training rows, which a refit bootstrap resamples (bootstrap.py); None
    #: in a model stored by a worker older than intervals (unpickled: the class default)
    data: pd.DataFrame | None = None
    #: each non-root node's record under its key (node_reuse.py), which later fits may
    #: reuse; None in a model stored by a worker older than incremental refits
    node_records: dict[str, NodeRecord] | None = None

    def table_bytes(self) -> int:
        """What the model holds beyond its pickle: lookup tables its queries built."""
        return table_bytes(self.scm)


@dataclass(frozen=True)
class Scores:
    r2: dict[str, float]
    accuracy: dict[str, float]


def effective_seed(seed: int | None) -> int:
    """The seed a computation runs with: the caller's, or a fresh one reported back."""
    return secrets.randbelow(2**32) if seed is None else seed


def fit_model(
    graph: Graph, frame: Frame, config: FitConfig, n_jobs: int = 1,
    progress: Progress | None = None, cancel: CancelToken = NEVER, reuse: Reuse | None = None,
) -> FittedModel:
    """Split, select, fit on train, score on held-out rows, refit on all rows.

    A node whose key (node_reuse.py) ``reuse`` finds is taken as it was fitted, not fitted
    again. A cancel stops the handing out of node tasks and answers -32800 at once; the
    few tasks already in joblib's hands run out in the background, their results dropped.
    """
    report = progress or _no_progress
    started = time.perf_counter()
    data = frame.data
    seed = effective_seed(config.seed)
    train, val = split_rows(data, config, seed)
    scm = gcm.InvertibleStructuralCausalModel(to_networkx(graph))
    roots = [node for node in graph.nodes if scm.graph.in_degree(node) == 0]
    total = len(graph.nodes) - len(roots)
    keys = node_keys(scm.graph, NodeKeys(train, val, data, frame.kinds, seed, config), seed)
    records: dict[str, NodeRecord] = {}
    seconds: dict[str, float] = {}
    with dowhy_errors("fit"):
        report("fitting", 0, total)
        reused = reused_nodes(keys, reuse, cancel)
        tasks = node_tasks(
            scm.graph, train, val, data, seed, lambda: cancel.requested, config.mechanism,
            skip=set(reused),
        )
        fits = fit_nodes(
            tasks, total - len(reused), QUALITY[config.quality], config.linear_tolerance,
            n_jobs, cancel,
        )
        for done, (node, mechanism, record, spent) in enumerate(
            chain(reused_fits(reused), new_fits(fits, keys)), start=1
        ):
            if cancel.requested:
                break
            install(scm, node, mechanism)
            records[node], seconds[node] = record, spent
            report("fitting", done, total, node)
        cancel.checkpoint()
        for node in roots:
            scm.set_causal_mechanism(node, root_mechanism(config.mechanism(node)))
            fit_causal_model_of_target(scm, node, data)
    report("scoring", 0, 1)
    in_graph_order = {n: records[n].val_predicted for n in graph.nodes if n in records}
    scores = score_predictions(in_graph_order, val, frame.kinds)
    overrides = {n: r.override for n, r in records.items() if r.override is not None}
    summary = summarise(scm, graph, frame, config, scores, overrides)
    for node in graph.nodes:
        if node in records and records[node].candidates:
            summary["scm"]["mechanisms"][node]["candidates"] = records[node].candidates
    summary["metadata"].update(
        fitting_time_ms=int((time.perf_counter() - started) * 1000),
        num_train=len(train),
        num_val=len(val),
        seed=seed,
        fit_processes=processes(total - len(reused), n_jobs),
        node_fit_ms={node: int(seconds[node] * 1000) for node in graph.nodes if node in seconds},
        fast_paths=sorted({path for r in records.values() for path in r.fast_paths}),
        reused_nodes=sorted(reused),
    )
    categories = {n: sorted(set(data[n])) for n, k in frame.kinds.items() if k != "numeric"}
    return FittedModel(
        scm, graph, frame.kinds, categories, config, len(data), summary, data=data,
        node_records=records,
    )


#: where a fit finds nodes kept from earlier fits: a node key → its record and a copy of
#: its mechanism (fitted on all rows), or None (store.ModelStore.reusable)
Reuse = Callable[[str], tuple[NodeRecord, Any] | None]

#: one node's outcome as the fit installs it: node, mechanism, record, seconds spent
Outcome = tuple[str, Any, NodeRecord, float]


def node_keys(digraph: nx.DiGraph, keys: NodeKeys, seed: int) -> dict[str, str]:
    """Every non-root node's key (node_reuse.py)."""
    return {
        node: keys.key(node, node_seed(seed, node), parents)
        for _, node, parents in by_expected_work(digraph)
    }


def reused_nodes(
    keys: dict[str, str], reuse: Reuse | None, cancel: CancelToken
) -> dict[str, tuple[NodeRecord, Any]]:
    """The nodes ``reuse`` finds kept under their keys (none without ``reuse``)."""
    found: dict[str, tuple[NodeRecord, Any]] = {}
    if reuse is None:
        return found
    for node, key in keys.items():
        cancel.checkpoint()
        kept = reuse(key)
        if kept is not None:
            found[node] = kept
    return found


def reused_fits(reused: dict[str, tuple[NodeRecord, Any]]) -> Iterator[Outcome]:
    """Kept nodes as the fit installs them: no time spent fitting."""
    for node, (record, mechanism) in reused.items():
        yield node, mechanism, record, 0.0


def new_fits(fits: Iterable[NodeFit], keys: dict[str, str]) -> Iterator[Outcome]:
    """Fitted nodes as the fit installs them, each with the record kept under its key."""
    for fit in fits:
        record = NodeRecord(
            keys[fit.node], scored_candidates(fit.candidates), fit.val_predicted, fit.override,
            fit.fast_paths,
        )
        yield fit.node, fit.mechanism, record, fit.seconds


def to_networkx(graph: Graph) -> nx.DiGraph:
    """A fresh DiGraph: DoWhy stores mechanisms on the graph's nodes, so never share one."""
    digraph = nx.DiGraph()
    digraph.add_nodes_from(graph.nodes)
    digraph.add_edges_from(graph.edges)
    return digraph


def split_rows(
    data: pd.DataFrame, config: FitConfig, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(data)
    if n < config.min_samples:
        raise WorkerError(
            INSUFFICIENT_DATA,
            f"Insufficient data: {n} complete rows, at least {config.min_samples} needed",
            {"num_samples": n, "min_samples": config.min_samples},
        )
    n_val = int(np.ceil(n * config.test_size))
    if n_val < 2 or n - n_val < 2:
        raise WorkerError(
            INSUFFICIENT_DATA,
            f"Insufficient data: test_size {config.test_size} of {n} rows leaves too few rows "
            "to train or validate",
            {"num_samples": n, "min_samples": config.min_samples, "num_val": n_val},
        )
    order = np.random.RandomState(seed).permutation(n)
    return data.iloc[order[n_val:]], data.iloc[order[:n_val]]


def node_tasks(
    digraph: nx.DiGraph, train: pd.DataFrame, val: pd.DataFrame, data: pd.DataFrame, seed: int,
    stopped: Callable[[], bool] = lambda: False,
    hand_set: Callable[[str], MechanismSpec | None] = lambda node: None,
    skip: Collection[str] = (),
) -> Iterator[NodeTask]:
    """One task per non-root node (but those in ``skip``), seeded by its name (``node_seed``).

    A generator: joblib takes tasks as processes free up, so only a few nodes' copies of
    their parents' columns exist at a time (all of them at once would be several times
    the data on a wide graph), and once ``stopped`` no further task starts. A node the
    user set by hand (``hand_set``) carries its spec and skips model selection. Tasks come
    largest first (``by_expected_work``); the seeds do not depend on that order.
    """
    for _, node, parents in by_expected_work(digraph):
        if stopped():
            return
        if node in skip:
            continue
        yield NodeTask(
            node, node_seed(seed, node),
            train[parents].to_numpy(), train[node].to_numpy(), val[parents].to_numpy(),
            data[parents].to_numpy(), data[node].to_numpy(), hand_set(node),
        )


def by_expected_work(digraph: nx.DiGraph) -> list[tuple[int, str, list[str]]]:
    """Non-root nodes as (topological index, node, parents), most parents first.

    A node's cost is mostly its gradient-boosting candidate, which grows with its number
    of parents, and in topological order the nodes with most parents come last: the
    fit would end with one process on its most expensive nodes while the other idles.
    Most parents first (ties in topological order) leaves the cheap nodes for the end.
    """
    nodes = [
        (index, node, get_ordered_predecessors(digraph, node))
        for index, node in enumerate(nx.topological_sort(digraph))
    ]
    return sorted((n for n in nodes if n[2]), key=lambda n: (-len(n[2]), n[0]))


def install(scm: gcm.StructuralCausalModel, node: str, mechanism: Any) -> None:
    """Put a mechanism fitted elsewhere on the model, with the bookkeeping ``gcm.fit`` does.

    DoWhy records each node's parents at fit time and checks them before every query.
    """
    scm.set_causal_mechanism(node, mechanism)
    validate_causal_model_assignment(scm.graph, node)
    scm.graph.nodes[node][PARENTS_DURING_FIT] = get_ordered_predecessors(scm.graph, node)


def predict_non_roots(scm: gcm.StructuralCausalModel, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each non-root node's point prediction for ``rows``, from its mechanism and its parents."""
    return {
        node: predict(scm.causal_mechanism(node), rows[parents].to_numpy())
        for node in scm.graph.nodes
        if (parents := get_ordered_predecessors(scm.graph, node))
    }


def score_predictions(
    predictions: dict[str, np.ndarray], val: pd.DataFrame, kinds: dict[str, ColumnKind]
) -> Scores:
    """R² per numeric non-root node, accuracy per categorical one, on the held-out rows."""
    r2: dict[str, float] = {}
    acc: dict[str, float] = {}
    for node, predicted in predictions.items():
        if kinds[node] == "numeric":
            r2[node] = scoring.r2(val[node].to_numpy(), predicted)
        else:
            acc[node] = scoring.accuracy(val[node].to_numpy(), predicted)
    return Scores(r2, acc)


def summarise(
    scm: gcm.StructuralCausalModel, graph: Graph, frame: Frame, config: FitConfig, scores: Scores,
    overrides: dict[str, Override],
) -> dict[str, Any]:
    verdict = scoring.judge(scores.r2, config.r2_threshold, config.r2_rule)
    warnings = fit_warnings(frame, scores, {n: overrides[n] for n in graph.nodes if n in overrides})
    mechanisms = {
        node: describe(
            scm.causal_mechanism(node), get_ordered_predecessors(scm.graph, node), frame.kinds, node
        )
        for node in graph.nodes
    }
    if config.quality == FAST:
        for node in graph.nodes:
            if get_ordered_predecessors(scm.graph, node):
                mechanisms[node]["chosen_by"] = FAST
    for node, override in overrides.items():
        mechanisms[node].update(chosen_by="linear_tolerance", override=override.as_json())
    for spec in config.mechanisms:
        mechanisms[spec.node].update(chosen_by="user", spec=spec.as_json())
    return {
        "status": "warning" if warnings else "success",
        "scm": {"graph": graph.as_json(), "mechanisms": mechanisms},
        "validation": {
            "r2_scores": scores.r2,
            "mean_r2": verdict.mean_r2,
            "passed": verdict.passed,
            "threshold": config.r2_threshold,
            "rule": config.r2_rule,
            "failed_nodes": verdict.failed_nodes,
            "accuracy": scores.accuracy,
        },
        "warnings": warnings,
        "metadata": {
            "num_samples": len(frame.data),
            "dropped_rows": frame.dropped_rows,
            "num_nodes": len(graph.nodes),
            "num_edges": len(graph.edges),
            "dowhy_version": dowhy_version(),
            "quality": config.quality,
        },
    }


def fit_warnings(
    frame: Frame, scores: Scores, overrides: dict[str, Override]
) -> list[dict[str, Any]]:
    warnings: list[dict[str, Any]] = []
    if frame.dropped_rows:
        warnings.append({
            "code": "rows_dropped",
            "node": None,
            "message": f"{frame.dropped_rows} rows with missing values were dropped",
        })
    for node, score in scores.r2.items():
        if score >= scoring.LEAKAGE_R2:
            warnings.append({
                "code": "possible_leakage",
                "node": node,
                "message": f"held-out R² of {node!r} is {score:.6f}: the node is (almost) a "
                "deterministic function of its parents; fine for code traces, suspicious for data",
            })
    warnings.extend(override_warning(node, override) for node, override in overrides.items())
    return warnings


def override_warning(node: str, override: Override) -> dict[str, Any]:
    """``linear_tolerance`` changed DoWhy's choice: said, never silent (both models and
    their cross-validated MSEs, so the user sees what the tolerance cost)."""
    return {
        "code": "mechanism_override",
        "node": node,
        "message": f"config.linear_tolerance kept the linear model for {node!r} (CV MSE "
        f"{override.linear_score:.6g}) over DoWhy's choice {override.dowhy_model} (CV MSE "
        f"{override.dowhy_score:.6g})",
        **override.as_json(),
    }


class dowhy_errors:
    """Context manager: anything DoWhy raises becomes -32005 with DoWhy's message."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, WorkerError) or not isinstance(exc, Exception):
            return
        log.warning("DoWhy %s failed: %s: %s", self.stage, type(exc).__name__, exc)
        raise WorkerError(
            FIT_FAILED,
            f"DoWhy {self.stage} failed: {exc}",
            {"stage": self.stage, "type": type(exc).__name__, "dowhy_message": str(exc)},
        ) from exc
