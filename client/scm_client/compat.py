"""Drop-in ``DoWhyClient`` for lift-sys: the subprocess-per-call client's API on one warm worker.

lift-sys's ``lift_sys/causal/dowhy_client.py`` started a fresh Python 3.11 process for
every call (``scripts/dowhy/fit_scm.py``, ``scripts/dowhy/query_fitted_scm.py``) and
refitted the model for every query. This module keeps its constructor, methods, result
dicts and exceptions, and talks to the user's scm-worker daemon instead (started when
none runs; with ``SCM_DAEMON=off``, one private worker per interpreter):

* ``fit_scm`` answers like ``fit_scm.py``: status ``"success"``, ``"validation_failed"``
  (a full result, not an exception) or ``"warning"`` (fewer than 100 rows; no model).
  The train/validation split is seeded with 42, as the original's ``random_state=42``.
* ``query_scm`` answers like ``query_fitted_scm.py``; the model it samples from is cached
  by a content hash of (graph, traces, quality), so asking again does not refit, and a
  model lost to a worker restart is refitted transparently, once.
* Input problems raise ValueError before the worker is contacted; worker failures raise
  ``DoWhySubprocessError`` with the scm_client exception as ``__cause__``.

Standard library only: graphs and frames are duck-typed (anything shaped like a
networkx DiGraph and a pandas DataFrame), never imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections import OrderedDict
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
    WorkerCrashed,
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
QUALITIES: Final = ("GOOD", "BETTER", "BEST")
MODEL_CACHE_SIZE: Final = 32
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


# -- one warm worker per interpreter, and the models it holds ------------------------


class _ModelCache:
    """Content key → model id, least recently used first out; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            model_id = self._ids.get(key)
            if model_id is not None:
                self._ids.move_to_end(key)
            return model_id

    def put(self, key: str, model_id: str) -> None:
        with self._lock:
            self._ids[key] = model_id
            self._ids.move_to_end(key)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)

    def discard(self, key: str, model_id: str) -> None:
        """Forget ``key`` if it still names ``model_id`` (another thread may have refitted)."""
        with self._lock:
            if self._ids.get(key) == model_id:
                del self._ids[key]

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)


_workers: dict[str, Worker] = {}
_workers_lock = threading.Lock()
_models = _ModelCache(MODEL_CACHE_SIZE)


def shared_worker(python: str) -> Worker:
    """The process-wide Worker for this interpreter, created on first use: a connection to
    the user's daemon (started when none runs), or with ``SCM_DAEMON=off`` a private worker.

    Worker closes itself at interpreter exit (it registers with atexit).
    """
    daemon = daemon_enabled()
    key = f"{python}|{'daemon' if daemon else 'private'}"
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None or worker.state is State.CLOSED:
            worker = _workers[key] = Worker.connect(python) if daemon else Worker(python)
        return worker


def close_shared_workers() -> None:
    """Stop every shared worker now and forget the models they held."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    _models.clear()
    for worker in workers:
        worker.close()


# -- input checks, as the original made them -----------------------------------------


@dataclass(frozen=True)
class _Request:
    """Checked inputs in wire form, and the content key of (worker, graph, traces, quality)."""

    graph: WireGraph
    traces: WireTraces
    rows: int
    quality: str
    key: str


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


def _content_key(python: str, quality: str, graph: WireGraph, traces: WireTraces) -> str:
    canonical = json.dumps([python, quality, graph, traces], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    sampled: SampleResult, asked: _QueryAsk, rows: int, fit_ms: int | None
) -> JSONDict:
    """query_fitted_scm.py's dict; ``fit_ms`` is None when the model came from the cache."""
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
            "fit_time_ms": fit_ms or 0,
            "num_training_samples": rows,
            "model_cached": fit_ms is None,
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
    private worker process) and one model cache.
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
        config = {
            "quality": request.quality,
            "validate_r2": False,  # the verdict becomes a status below, as the original's
            "r2_threshold": r2_threshold,
            "test_size": test_size,
            "seed": SPLIT_SEED,
            "min_samples": MIN_SAMPLES,
        }
        try:
            fitted = self._fit(request, config)
        except InsufficientData as exc:  # rows with nulls were dropped, or test_size left too few
            if exc.num_samples is not None and exc.num_samples < MIN_SAMPLES:
                return _too_few_rows(exc.num_samples)
            raise DoWhySubprocessError(f"DoWhy subprocess failed: {exc}") from exc
        _models.put(request.key, fitted.model_id)
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
        model_id, fit_ms = self._model_for(request)
        try:
            sampled = self._sample(model_id, asked)
        except ModelNotFound:
            log.info("model %s is gone (worker restarted or evicted it); refitting once", model_id)
            _models.discard(request.key, model_id)
            model_id, fit_ms = self._model_for(request)
            sampled = self._sample(model_id, asked, refitted=True)
        return _query_output(sampled, asked, request.rows, fit_ms)

    def _model_for(self, request: _Request) -> tuple[str, int | None]:
        """A model for this content and its fit time: the cached one (None), or a fresh fit."""
        cached = _models.get(request.key)
        if cached is not None:
            return cached, None
        config = {
            "quality": request.quality,
            "validate_r2": False,
            "test_size": 0.2,
            "seed": SPLIT_SEED,
            "min_samples": QUERY_MIN_ROWS,
        }
        try:
            fitted = self._fit(request, config)
        except InsufficientData as exc:
            raise DoWhySubprocessError(f"DoWhy query subprocess failed: {exc}") from exc
        _models.put(request.key, fitted.model_id)
        return fitted.model_id, int(fitted.metadata.get("fitting_time_ms", 0))

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
        wire_traces = _wire_traces(traces)
        checked_quality = _quality(quality)
        key = _content_key(str(self.python_path), checked_quality, wire_graph, wire_traces)
        return _Request(wire_graph, wire_traces, len(traces), checked_quality, key)

    def _fit(self, request: _Request, config: JSONDict) -> FitResult:
        def call() -> FitResult:
            return self.worker.fit(request.graph, request.traces, timeout=self.timeout, **config)

        fitted = self._call("fit", call)
        self.fits_performed += 1
        return fitted

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """One worker call: a crash is retried once on a fresh worker; other failures
        become DoWhySubprocessError. InsufficientData and ModelNotFound pass through:
        the callers answer them."""
        try:
            try:
                return call()
            except WorkerCrashed as exc:
                log.warning("the DoWhy worker crashed during %s (%s); retrying once", what, exc)
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
