"""Drop-in ``DoWhyClient`` for lift-sys: the subprocess-per-call client's API on one warm worker.

lift-sys's ``lift_sys/causal/dowhy_client.py`` started a fresh Python 3.11 process for
every call (``scripts/dowhy/fit_scm.py``, ``scripts/dowhy/query_fitted_scm.py``) and
refitted the model for every query. This module keeps its constructor, methods, result
dicts and exceptions, and talks to the user's scm-worker daemon instead (started when
none runs; with ``SCM_DAEMON=off``, one private worker per interpreter):

* ``fit_scm`` answers like ``fit_scm.py``: status ``"success"``, ``"validation_failed"``
  (a full result, not an exception) or ``"warning"`` (fewer than 100 rows; no model).
  The train/validation split is seeded with 42, as the original's ``random_state=42``.
* ``query_scm`` answers like ``query_fitted_scm.py``. Every query sends its fit, and the
  worker's fit cache answers it with the model an identical earlier fit made (a
  ``fit_scm`` of the same data and quality with the default threshold and split
  included), so asking again does not refit (``metadata.model_cached``); a model lost to
  a worker restart is refitted by the same fit. A crash is sent again once by the Worker
  (``crash_retries=1``).
* Input problems raise ValueError before the worker is contacted; worker failures raise
  ``DoWhySubprocessError`` with the scm_client exception as ``__cause__``.

Standard library only: graphs and frames are duck-typed (anything shaped like a
networkx DiGraph and a pandas DataFrame), never imported.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from ._daemon import daemon_enabled
from ._locate import find_worker_python
from ._wire import plain, traces_to_wire
from .errors import (
    InsufficientData,
    ModelNotFound,
    WorkerError,
    WorkerStartError,
    WorkerTimeout,
)
from .results import FitResult, SampleResult
from .worker import State, Worker

__all__ = ["DoWhyClient", "DoWhySubprocessError", "close_shared_workers", "fit_scm"]

log = logging.getLogger("scm_client.compat")

MIN_SAMPLES: Final = 100  # fit_scm.py's fixed minimum, answered with status "warning"
SPLIT_SEED: Final = 42  # fit_scm.py's train_test_split(random_state=42)
QUALITIES: Final = ("GOOD", "BETTER", "BEST", "FAST")  # FAST: the worker's own selection
# query_fitted_scm.py had no minimum (DoWhy's 5-fold model selection needed 5 rows); the
# worker also holds out 20% for scoring: 10 rows keep 8 to train on and 2 to score.
QUERY_MIN_ROWS: Final = 10

T = TypeVar("T")
JSONDict = dict[str, Any]
WireGraph = dict[str, list[Any]]
WireTraces = dict[str, list[Any]]


class DoWhySubprocessError(WorkerError):
    """The worker could not answer: start failure, crash, timeout, or a failed fit or query.

    The name lift-sys catches. It is a ``scm_client.WorkerError`` too, and the
    scm_client exception that caused it is its ``__cause__``.
    """


# -- one warm worker per interpreter -------------------------------------------------


_workers: dict[str, Worker] = {}
_workers_lock = threading.Lock()


def shared_worker(python: str) -> Worker:
    """The process-wide Worker for this interpreter, created on first use: a connection to
    the user's daemon (started when none runs), or with ``SCM_DAEMON=off`` a private worker.

    A call that meets a crash is sent again once, by the Worker's own policy. Worker
    closes itself at interpreter exit (it registers with atexit).
    """
    daemon = daemon_enabled()
    key = f"{python}|{'daemon' if daemon else 'private'}"
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None or worker.state is State.CLOSED:
            worker = _workers[key] = (Worker.connect(python, crash_retries=1) if daemon
                                      else Worker(python, crash_retries=1))
        return worker


def close_shared_workers() -> None:
    """Stop every shared worker now."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker.close()


# -- input checks, as the original made them -----------------------------------------


@dataclass(frozen=True)
class _Request:
    """Checked inputs in wire form."""

    graph: WireGraph
    traces: WireTraces
    rows: int
    quality: str


def _digraph_parts(graph: Any) -> tuple[list[Any], list[tuple[Any, Any]]]:
    directed = (
        callable(getattr(graph, "predecessors", None))
        and hasattr(graph, "nodes")
        and hasattr(graph, "edges")
    )
    is_directed = getattr(graph, "is_directed", None)
    if not directed or (callable(is_directed) and not is_directed()):
        raise ValueError("graph must be a NetworkX DiGraph")
    return list(graph.nodes), [(edge[0], edge[1]) for edge in graph.edges]


def _require_dataframe(traces: Any) -> None:
    shaped = all(hasattr(traces, name) for name in ("columns", "__getitem__", "__len__"))
    if not shaped or isinstance(traces, Mapping):
        raise ValueError("traces must be a pandas DataFrame")


def _require_dag(nodes: Sequence[Any], edges: Sequence[tuple[Any, Any]]) -> None:
    """Kahn's algorithm: every node can be ordered, or there is a cycle."""
    indegree = dict.fromkeys(nodes, 0)
    children: dict[Any, list[Any]] = {node: [] for node in nodes}
    for parent, child in edges:
        indegree[child] = indegree.get(child, 0) + 1
        children.setdefault(parent, []).append(child)
        indegree.setdefault(parent, 0)
    ready = [node for node, degree in indegree.items() if degree == 0]
    ordered = 0
    while ready:
        ordered += 1
        for child in children.get(ready.pop(), []):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if ordered < len(indegree):
        raise ValueError("graph must be a Directed Acyclic Graph (DAG)")


def _require_same_names(nodes: Sequence[Any], columns: Sequence[Any]) -> None:
    graph_nodes, trace_columns = set(nodes), set(columns)
    if graph_nodes != trace_columns:
        raise ValueError(
            "Graph nodes and trace columns do not match.\n"
            f"  Missing in traces: {graph_nodes - trace_columns}\n"
            f"  Missing in graph: {trace_columns - graph_nodes}"
        )


def _wire_traces(traces: Any) -> WireTraces:
    try:
        return traces_to_wire(traces)
    except WorkerError as exc:  # an infinite value: it cannot be sent as JSON
        raise ValueError(f"traces cannot be sent to DoWhy: {exc}") from exc


def _quality(quality: str) -> str:
    if quality in QUALITIES:
        return quality
    log.warning("unknown quality %r; fitting with GOOD, as the original client did", quality)
    return "GOOD"


def _fit_config(quality: str, r2_threshold: float = 0.7, test_size: float = 0.2) -> JSONDict:
    """The one fit config of ``fit_scm`` and ``query_scm``: with the defaults, the same
    fit-cache key, so a query is answered by the model ``fit_scm`` made of the same data.

    ``validate_r2`` is off: the verdict becomes a status, as the original's. ``min_samples``
    is the query's; ``fit_scm`` answers fewer than 100 complete rows itself (a warning).
    """
    return {"quality": quality, "validate_r2": False, "r2_threshold": r2_threshold,
            "test_size": test_size, "seed": SPLIT_SEED, "min_samples": QUERY_MIN_ROWS}


# -- result shapes of fit_scm.py and query_fitted_scm.py ------------------------------


def _too_few_rows(rows: int) -> JSONDict:
    return {
        "status": "warning",
        "message": f"Only {rows} samples (recommended: ≥{MIN_SAMPLES})",
        "scm": None,
        "validation": None,
    }


def _with_params(mechanism: JSONDict) -> JSONDict:
    """Every mechanism gets the original's ``params``: None for empirical, else a dict."""
    described = dict(mechanism)
    if described.get("type") == "empirical":
        described["params"] = None
    else:
        described["params"] = {
            "model_type": described.get("model"),
            **(described.get("params") or {}),
        }
    return described


def _fit_output(fitted: FitResult, validate_r2: bool) -> JSONDict:
    """fit_scm.py's dict; the worker's extra fields (rule, accuracy, warnings) ride along."""
    passed = fitted.passed if validate_r2 else True
    validation = {
        **fitted.validation,
        "mean_r2": fitted.mean_r2 if fitted.mean_r2 is not None else 0.0,
        "passed": passed,
        "failed_nodes": [] if passed else list(fitted.validation.get("failed_nodes", [])),
    }
    mechanisms = {node: _with_params(m) for node, m in fitted.scm["mechanisms"].items()}
    return {
        "status": "success" if passed else "validation_failed",
        "scm": {"graph": fitted.scm["graph"], "mechanisms": mechanisms},
        "validation": validation,
        "metadata": {**fitted.metadata, "model_id": fitted.model_id},
        "warnings": fitted.warnings,
        "model_id": fitted.model_id,
    }


def _sample_std(statistics: JSONDict) -> JSONDict:
    """pandas' ``Series.std()`` (ddof=1), which the original reported, from the worker's ddof=0."""
    count, std = statistics.get("count"), statistics.get("std")
    if not isinstance(count, int) or count < 2 or not isinstance(std, (int, float)):
        return dict(statistics)
    return {**statistics, "std": std * math.sqrt(count / (count - 1))}


def _query_output(
    sampled: SampleResult, asked: _QueryAsk, rows: int, fitted: FitResult
) -> JSONDict:
    """query_fitted_scm.py's dict; a model from the worker's fit cache took no fit time."""
    cached = bool(fitted.metadata.get("cache_hit"))
    fit_ms = 0 if cached else int(fitted.metadata.get("fitting_time_ms", 0))
    nodes = list(sampled.statistics)
    return {
        "status": "success",
        "query_type": "interventional",
        "samples": sampled.samples or {},
        "statistics": {node: _sample_std(stats) for node, stats in sampled.statistics.items()},
        "metadata": {
            **sampled.metadata,
            "query_time_ms": sampled.metadata.get("sampling_time_ms", 0),
            "num_samples": asked.num_samples,
            "num_interventions": len(asked.interventions),
            "query_nodes": asked.query_nodes or nodes,
            "fit_time_ms": fit_ms,
            "num_training_samples": rows,
            "model_cached": cached,
        },
    }


@dataclass(frozen=True)
class _QueryAsk:
    interventions: list[Mapping[str, Any]]
    query_nodes: list[str] | None
    num_samples: int

    @property
    def kind(self) -> str:
        # An empty interventions list drew plain samples in the original (do() of nothing).
        return "interventional" if self.interventions else "observational"


# -- the client -------------------------------------------------------------------------


def _resolve_python(python_path: str | None, auto_setup: bool | None = None) -> Path:
    """The worker interpreter as an absolute path (symlinks kept: a venv's python is one).

    lift-sys's client raised FileNotFoundError for a missing interpreter; so does this one,
    with the discovery's own advice (``scm setup``) in the message.
    """
    try:
        return Path(os.path.abspath(find_worker_python(python_path, auto_setup=auto_setup)))
    except WorkerStartError as exc:
        raise FileNotFoundError(f"Python 3.11 worker interpreter not found: {exc}") from exc


class DoWhyClient:
    """lift-sys's DoWhy client, served by a persistent scm-worker.

    ``python_path`` is the worker's Python 3.11 (default: ``SCM_WORKER_PYTHON``, then the
    project's ``.venv-worker``, then the environment ``scm setup`` provisioned; with
    ``auto_setup=True`` or ``SCM_AUTO_SETUP=1`` a missing one is built); ``script_path`` is
    accepted and ignored; ``timeout`` is each request's limit in seconds. All clients with
    the same interpreter share one connection (to the daemon, or with ``SCM_DAEMON=off`` one
    private worker process), and so the worker's fit cache.
    ``fits_performed`` counts the fits the worker ran for this client: a fit its cache
    answered is not one.
    """

    def __init__(
        self, python_path: str | None = None, script_path: str | None = None, timeout: float = 60.0,
        *, auto_setup: bool | None = None,
    ) -> None:
        self.python_path = _resolve_python(python_path, auto_setup)
        self.script_path = script_path
        self.timeout = timeout
        self.fits_performed = 0

    @property
    def worker(self) -> Worker:
        """The shared scm_client Worker behind this client."""
        return shared_worker(str(self.python_path))

    # -- fit ------------------------------------------------------------------------
    def fit_scm(
        self,
        graph: Any,
        traces: Any,
        quality: str = "GOOD",
        validate_r2: bool = True,
        r2_threshold: float = 0.7,
        test_size: float = 0.2,
    ) -> JSONDict:
        """Fit an SCM; the result dict of ``fit_scm.py`` (see the module docstring)."""
        request = self._request(graph, traces, quality)
        if request.rows < MIN_SAMPLES:
            return _too_few_rows(request.rows)
        try:
            fitted = self._fit(request, _fit_config(request.quality, r2_threshold, test_size))
        except InsufficientData as exc:  # too few complete rows, or test_size left too few
            if exc.num_samples is not None and exc.num_samples < MIN_SAMPLES:
                return _too_few_rows(exc.num_samples)
            raise DoWhySubprocessError(f"DoWhy subprocess failed: {exc}") from exc
        complete = fitted.metadata.get("num_samples")
        if isinstance(complete, int) and complete < MIN_SAMPLES:  # rows with nulls dropped
            return _too_few_rows(complete)
        return _fit_output(fitted, validate_r2)

    # -- query ----------------------------------------------------------------------
    def query_scm(
        self,
        graph: Any,
        traces: Any,
        interventions: list[dict[str, Any]],
        query_nodes: list[str] | None = None,
        num_samples: int = 1000,
        quality: str = "GOOD",
    ) -> JSONDict:
        """Interventional samples and statistics; the result dict of ``query_fitted_scm.py``."""
        request = self._request(graph, traces, quality)
        asked = _QueryAsk(
            list(interventions or []), list(query_nodes) if query_nodes else None, num_samples
        )
        fitted = self._fit_for_query(request)
        try:
            sampled = self._sample(fitted.model_id, asked)
        except ModelNotFound:
            log.info("model %s is gone (evicted since its fit); fitting again once",
                     fitted.model_id)
            fitted = self._fit_for_query(request)
            sampled = self._sample(fitted.model_id, asked, refitted=True)
        return _query_output(sampled, asked, request.rows, fitted)

    def _fit_for_query(self, request: _Request) -> FitResult:
        """The model of this content: the worker's fit cache answers a repeat at once."""
        try:
            return self._fit(request, _fit_config(request.quality))
        except InsufficientData as exc:
            raise DoWhySubprocessError(f"DoWhy query subprocess failed: {exc}") from exc

    def _sample(self, model_id: str, asked: _QueryAsk, refitted: bool = False) -> SampleResult:
        def call() -> SampleResult:
            return self.worker.sample(
                model_id,
                asked.kind,
                asked.interventions or None,
                num_samples=asked.num_samples,
                query_nodes=asked.query_nodes,
                return_samples=True,
                timeout=self.timeout,
            )

        try:
            return self._call("query", call)
        except ModelNotFound as exc:
            if not refitted:
                raise
            raise DoWhySubprocessError(f"DoWhy query subprocess failed: {exc}") from exc

    # -- availability ---------------------------------------------------------------
    def check_availability(self) -> bool:
        """True if the worker starts and has DoWhy; logs the version or the reason."""
        try:
            info = self.worker.start()
        except WorkerError as exc:
            log.warning("DoWhy check failed: %s", exc)
            return False
        version = info.get("dowhy_version")
        if version in (None, "not installed"):
            log.warning("DoWhy import failed: the worker at %s has no dowhy", self.python_path)
            return False
        log.info("DoWhy available: version %s", version)
        return True

    # -- plumbing -------------------------------------------------------------------
    def _request(self, graph: Any, traces: Any, quality: str) -> _Request:
        nodes, edges = _digraph_parts(graph)
        _require_dataframe(traces)
        _require_dag(nodes, edges)
        _require_same_names(nodes, list(traces.columns))
        wire_graph: WireGraph = {
            "nodes": [plain(node) for node in nodes],
            "edges": [[plain(parent), plain(child)] for parent, child in edges],
        }
        return _Request(wire_graph, _wire_traces(traces), len(traces), _quality(quality))

    def _fit(self, request: _Request, config: JSONDict) -> FitResult:
        def call() -> FitResult:
            return self.worker.fit(request.graph, request.traces, timeout=self.timeout, **config)

        fitted = self._call("fit", call)
        if not fitted.metadata.get("cache_hit"):
            self.fits_performed += 1
        return fitted

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """One worker call (the Worker sends it again once after a crash); failures become
        DoWhySubprocessError. InsufficientData and ModelNotFound pass through: the callers
        answer them."""
        try:
            return call()
        except (InsufficientData, ModelNotFound):
            raise
        except WorkerTimeout as exc:
            raise DoWhySubprocessError(
                f"DoWhy {what} subprocess timed out after {self.timeout}s"
            ) from exc
        except WorkerStartError as exc:
            raise DoWhySubprocessError(f"Failed to run DoWhy subprocess: {exc}") from exc
        except WorkerError as exc:
            raise DoWhySubprocessError(f"DoWhy {what} subprocess failed: {exc}") from exc


def fit_scm(graph: Any, traces: Any, **kwargs: Any) -> JSONDict:
    """One-shot ``DoWhyClient().fit_scm(graph, traces, **kwargs)`` (on the shared worker)."""
    return DoWhyClient().fit_scm(graph, traces, **kwargs)
