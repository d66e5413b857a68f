"""Worker: start, call, typed methods, close. The client-side owner of one worker session.

The Worker owns policy (the handshake, timeouts, restarts, retries, state) and the typed
calls; its Backend owns what lies under the channel (_backend.py): ``Worker()`` runs on a
private stdio worker (_private.py), its own process, started lazily and stopped by
``close``; ``Worker.connect()`` on the user's daemon (_daemon_backend.py, started when none
serves), where ``close`` closes only the connection. The Channel owns the I/O. Calls are
thread-safe.

A call that times out is first cancelled (``$/cancelRequest``); if the worker does not
answer within ``cancel_grace`` seconds, the backend lets it go (a private worker is killed,
since it may be stuck in C code; a daemon connection is dropped, since a shared daemon is
never killed); the next call starts a fresh worker or connection. A crash fails every
pending call with WorkerCrashed and the next call restarts, up to ``max_restarts`` times
in a row; with ``crash_retries`` a call that met the crash is sent again by itself.
"""

from __future__ import annotations

import atexit
import enum
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Final, Self

from . import _daemon
from ._backend import Backend, Closing, Link
from ._channel import Channel, Progress
from ._daemon_backend import DaemonBackend
from ._isolated import absolute_args
from ._private import PrivateBackend
from ._restart import RestartPolicy
from ._version import __version__
from ._wire import (
    columns_from_wire,
    fit_params,
    graph_to_wire,
    plain_result,
    to_jsonable,
    traces_to_wire,
)
from .errors import (
    RemoteError,
    WorkerClosed,
    WorkerCrashed,
    WorkerError,
    WorkerStartError,
    WorkerTimeout,
    WorkerVersionMismatch,
    invalid_argument,
)
from .results import (
    AnomalyResult,
    Attribution,
    EffectResult,
    EvaluateResult,
    FalsifyResult,
    FitResult,
    SampleResult,
)

log = logging.getLogger("scm_client.worker")

PROTOCOL_VERSION: Final = 1
#: what the client says in ``initialize``: who it is, and every column encoding it reads
HELLO: Final = {"client": f"scm_client {__version__}", "protocol_version": PROTOCOL_VERSION,
                "column_encodings": ["json", "binary", "attached"]}
#: the worker's bound on a request's ``timeout_s`` (a day)
MAX_TIMEOUT_S: Final = 86_400


class _UseDefault:
    """Sentinel type: "use the Worker's request_timeout", distinct from ``None`` (wait forever)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _UseDefault()
Timeout = float | None | _UseDefault


class State(enum.Enum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    CRASHED = "crashed"
    CLOSED = "closed"


#: ``progress`` notification params: ``{"request_id", "stage", "done", "total", "node"?, ...}``
ProgressCallback = Progress


class Worker:
    """A persistent scm-worker process, started lazily on the first call or by ``start()``."""

    def __init__(
        self,
        python: str | None = None,
        *,
        start_timeout: float = 120.0,
        request_timeout: float | None = None,
        max_restarts: int = 3,
        env: Mapping[str, str] | None = None,
        worker_args: Sequence[str] = (),
        shutdown_timeout: float = 5.0,
        on_progress: ProgressCallback | None = None,
        auto_setup: bool | None = None,
        cancel_grace: float = 2.0,
        daemon: _daemon.DaemonOptions | None = None,
        crash_retries: int = 0,
    ) -> None:
        """A private worker process (see ``connect`` for the shared daemon).

        ``cancel_grace``: after a call's timeout, how long to wait for the worker to answer
        its cancellation before killing it (0: kill at once, without cancelling).
        ``daemon``: connect to the user's daemon instead (``Worker.connect`` sets it).
        ``crash_retries``: how many times a call (``call`` or a typed method, not a
        ``submit`` handle) that meets a crash is sent again to the restarted worker; each
        restart counts toward ``max_restarts``. 0: the crash is raised.
        """
        self.python = python
        self.cancel_grace = cancel_grace
        self.daemon = daemon
        self.auto_setup = auto_setup
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.shutdown_timeout = shutdown_timeout
        self.env = dict(env or {})
        self.worker_args = absolute_args(worker_args)  # the worker runs from /, not here
        self.on_progress = on_progress
        self.info: dict[str, Any] = {}
        self.last_stop: str | None = None
        self.starts = 0
        #: calls sent again after a crash (``crash_retries``)
        self.retries = 0
        #: what this Worker stands on: a private process, or the daemon
        self.backend: Backend = (
            DaemonBackend(daemon) if daemon is not None
            else PrivateBackend(python, self.env, self.worker_args, auto_setup))
        self._policy = RestartPolicy(max_restarts, crash_retries)
        self._state = State.NOT_STARTED
        self._link: Link | None = None
        self._lifecycle = threading.RLock()
        _live_workers.add(self)

    @classmethod
    def connect(
        cls,
        python: str | None = None,
        *,
        idle_timeout: float | None = None,
        threads: int | None = None,
        store: str | None = None,
        start_timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
        worker_args: Sequence[str] = (),
        auto_setup: bool | None = None,
        **options: Any,
    ) -> Self:
        """A Worker on the user's daemon, which is started when none serves.

        Models, the fit cache and the store are shared with every other client of the
        daemon, and it stays warm between processes. ``python`` names the worker
        environment, and so the daemon: each environment (and each version of its
        ``scm_worker`` source) has its own. ``idle_timeout``, ``threads``, ``store``,
        ``env`` and ``worker_args`` apply only to a daemon this call has to start; a
        running daemon keeps its own. ``close()`` closes the connection, never the daemon
        (``scm daemon stop`` does). Other options as Worker().
        """
        settings = _daemon.DaemonOptions(
            python, idle_timeout, threads, store, tuple(worker_args), dict(env or {}),
            start_timeout, auto_setup)
        return cls(python, start_timeout=start_timeout, env=env, worker_args=worker_args,
                   auto_setup=auto_setup, daemon=settings, **options)

    # -- lifecycle ----------------------------------------------------------------
    @property
    def state(self) -> State:
        with self._lifecycle:
            link = self._link
            if self._state is State.RUNNING and link is not None and not link.channel.alive:
                return State.CRASHED
            return self._state

    @property
    def pid(self) -> int | None:
        """The worker's pid (a daemon's, over a socket); None before the first start."""
        channel = self._channel
        return channel.pid if channel is not None else None

    @property
    def _channel(self) -> Channel | None:
        """The current link's channel; None before the first start and once closed."""
        link = self._link
        return link.channel if link is not None else None

    def start(self) -> dict[str, Any]:
        """Start the worker now (otherwise the first call does); returns the handshake."""
        self._ensure_running()
        return self.info

    def _ensure_running(self) -> Link:
        with self._lifecycle:
            if self._state is State.CLOSED:
                raise WorkerClosed("this Worker is closed")
            if self._link is not None and self._link.channel.alive:
                return self._link
            if self._link is not None:
                self._replace(self._link)
            link = self.backend.open(self._on_notification)
            self.starts += 1
            try:
                self._handshake(link)
            except WorkerCrashed:  # the peer died under the handshake: settle it next time
                self._link = link
                raise
            self._link = link
            self._state = State.RUNNING
            return link

    def _replace(self, link: Link) -> None:
        """Let a dead (or abandoned) link go before its successor, within ``max_restarts``."""
        link.reap()
        link.settle()
        if not self._policy.may_restart():
            raise WorkerStartError(
                f"the worker failed {self._policy.restarts_in_a_row + 1} times in a row; "
                f"giving up (max_restarts={self._policy.max_restarts})",
                link.channel.stderr_tail(),
            )
        self._policy.record_restart()
        log.warning("restarting the worker (restart %d in a row)", self._policy.restarts_in_a_row)

    def _handshake(self, link: Link) -> None:
        try:
            _, future = link.channel.request("initialize", HELLO)
            info = future.result(timeout=self.start_timeout)
        except (WorkerError, FutureTimeout) as exc:
            link.reap()
            reason = "timed out" if isinstance(exc, FutureTimeout) else str(exc).splitlines()[0]
            raise link.start_failure(reason, exc) from exc
        if info.get("protocol_version") != PROTOCOL_VERSION:
            link.reap()
            raise WorkerStartError(
                f"protocol mismatch: client speaks {PROTOCOL_VERSION}, "
                f"worker {info.get('protocol_version')}"
            )
        if info.get("worker_version") != __version__:
            link.reap()
            fix = () if link.mismatch_fix is None else (link.mismatch_fix,)
            raise WorkerVersionMismatch(info.get("worker_version"), __version__, link.where, *fix)
        self.info = info

    def close(self) -> None:
        """Ask a private worker to shut down, then SIGTERM, then SIGKILL; on a daemon, close
        the connection only (the daemon keeps serving). Idempotent."""
        self.finish_close(self.begin_close())

    def begin_close(self) -> Closing | None:
        """The first half of ``close``: mark the Worker closed and send ``shutdown``, no wait.

        ``finish_close`` waits and reaps. Split so that a WorkerPool asks every worker to
        stop before it waits for any (execnet's ``Group.terminate``). None: nothing to wait
        for (never started, or a daemon connection, closed at once).
        """
        with self._lifecycle:
            if self._state is State.CLOSED:
                return None
            link, self._link = self._link, None
            self._state = State.CLOSED
        if link is None:
            return None
        closing = link.begin_close()
        if isinstance(closing, str):
            self._stopped(closing)
            return None
        return closing

    def finish_close(self, closing: Closing | None) -> None:
        """The second half of ``close``: wait for the reply and the exit, escalate, reap."""
        if closing is not None:
            self._stopped(closing.finish(self.shutdown_timeout))

    def _stopped(self, how: str) -> None:
        self.last_stop = how
        _live_workers.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------
    def call(
        self, method: str, params: Any = None, timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None, *, timeout_s: float | None = None,
    ) -> Any:
        """Send one request and wait for its result, as plain JSON; raises a WorkerError subclass.

        The result is plain JSON whatever the encoding the columns travelled in: a
        ``sample`` result's columns are lists (None for missing). ``Worker.sample`` keeps
        them as arrays, without the conversion (``SampleResult.columns``).

        ``on_progress`` receives this call's ``progress`` notifications only (other threads'
        calls on the same Worker go to theirs); without it, the Worker's ``on_progress``.
        On timeout: cancel, wait ``cancel_grace``, then kill (private) or disconnect
        (daemon); ``WorkerTimeout.outcome`` says which.

        ``timeout_s``: the worker's own deadline for the request, counted from its arrival,
        queued or running (RequestCancelled when it runs out; the worker and the connection
        serve on). ``timeout`` is how long this call waits; the two are independent.
        """
        return plain_result(self._call(method, params, timeout, on_progress, timeout_s))

    def _call(self, method: str, params: Any, timeout: Timeout,
              on_progress: ProgressCallback | None, timeout_s: float | None = None) -> Any:
        """One call as it arrived (columns in their wire encoding), sent again after a
        crash up to ``crash_retries`` times: the one retry policy of the client."""
        attempt = 1
        while True:
            try:
                return self.submit(method, params, on_progress, timeout_s=timeout_s)._wait(timeout)
            except WorkerCrashed as exc:
                if not self._policy.may_resend(attempt):
                    raise
                log.warning("%r met a crash (%s); sending it again on a restarted worker",
                            method, str(exc).splitlines()[0])
                attempt += 1
                with self._lifecycle:
                    self.retries += 1

    def submit(
        self, method: str, params: Any = None, on_progress: ProgressCallback | None = None,
        *, timeout_s: float | None = None,
    ) -> PendingCall:
        """Send one request without waiting: a handle to wait on, or cancel from any thread.
        ``timeout_s`` as in ``call``. The handle is this one request: a crash fails it
        (``crash_retries`` applies to ``call`` and the typed methods)."""
        params = with_deadline(params, timeout_s)
        link = self._ensure_running()
        request_id, future = link.channel.request(method, params, on_progress)
        return PendingCall(self, link, method, request_id, future)

    def _wait(self, call: PendingCall, timeout: Timeout) -> Any:
        limit = self.request_timeout if isinstance(timeout, _UseDefault) else timeout
        try:
            result = call.future.result(timeout=limit)
        except FutureTimeout:
            outcome = self._after_timeout(call, limit)
            raise WorkerTimeout(call.method, limit, outcome) from None  # type: ignore[arg-type]
        except RemoteError:
            self._policy.record_success()
            raise
        self._policy.record_success()
        return result

    def _after_timeout(self, call: PendingCall, limit: float | None) -> str:
        """Cancel, wait the grace, then let the backend drop the worker; the outcome's name."""
        channel = call.channel
        if self.cancel_grace > 0 and channel.cancel(call.request_id):
            try:
                call.future.result(timeout=self.cancel_grace)
                self._policy.record_success()
                return "cancelled"
            except RemoteError:  # RequestCancelled, or the request's own error
                self._policy.record_success()
                return "cancelled"
            except (FutureTimeout, WorkerError):
                pass
        channel.forget(call.request_id)
        return call.link.abandon(f"{call.method!r} timed out", limit)

    def _on_notification(self, method: str, params: Any) -> None:
        """The fallback for progress of calls that brought no ``on_progress`` of their own."""
        if method == "progress" and self.on_progress is not None and isinstance(params, dict):
            self.on_progress(params)

    # -- typed API ----------------------------------------------------------------
    def wait_until_warm(self, timeout: float | None = None) -> bool:
        """Block until the worker has imported DoWhy and started its pools (True if warm)."""
        wait = None if timeout is None else timeout + 5.0
        return bool(self.call("warmup", {"timeout": timeout}, timeout=wait)["warm"])

    def ping(self, timeout: Timeout = DEFAULT) -> str:
        return str(self.call("ping", timeout=timeout))

    def reads_binary(self) -> bool:
        """Whether the worker (started now if need be) reads binary columns."""
        self.start()
        return "binary" in self.info.get("column_encodings", ())

    def _columns(self, columns: Any, field: str = "traces") -> dict[str, Any]:
        return traces_to_wire(columns, field, binary=self.reads_binary())

    # The long calls take ``on_progress``: it receives that call's ``progress``
    # notifications only (docs/PROTOCOL.md lists the stages); without it, the Worker's.
    def fit(self, graph: Any, traces: Any, *, timeout: Timeout = DEFAULT,
            on_progress: ProgressCallback | None = None, **config: Any) -> FitResult:
        """Fit an SCM; config keys as the wire's (quality, seed, r2_threshold, …)."""
        params = fit_params(graph, traces, config, binary=self.reads_binary())
        return FitResult.from_wire(self.call("fit", params, timeout, on_progress))

    def evaluate(
        self, model: FitResult | str, traces: Any, *, timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None, **options: Any
    ) -> EvaluateResult:
        """Score a model on rows, with what DoWhy's ``evaluate_causal_model`` reports.

        ``options`` are the wire's (docs/PROTOCOL.md): ``mechanisms`` and
        ``overall_kl_divergence`` (default True), ``compare_mechanism_baselines``,
        ``invertibility``, ``falsify_graph`` (default False), ``max_permutations``,
        ``falsify_graph_significance_level``, ``seed``.
        """
        params = {"model_id": model_id_of(model), "traces": self._columns(traces), **options}
        return EvaluateResult.from_wire(self.call("evaluate", params, timeout, on_progress))

    def falsify(
        self, graph: Any, traces: Any, *, max_permutations: int | None = None,
        significance_level: float | None = None, seed: int | None = None,
        timeout: Timeout = DEFAULT, on_progress: ProgressCallback | None = None,
    ) -> FalsifyResult:
        """DoWhy's ``falsify_graph`` on a graph and its rows: no model is fitted.

        ``max_permutations`` None is DoWhy's rule (1 / ``significance_level``); None for
        ``significance_level`` is DoWhy's 0.05. The result's ``permutations`` is what ran.
        """
        params = {"graph": graph_to_wire(graph), "traces": self._columns(traces),
                  "max_permutations": max_permutations, "significance_level": significance_level,
                  "seed": seed}
        return FalsifyResult.from_wire(self.call("falsify", params, timeout, on_progress))

    def sample(
        self,
        model: FitResult | str,
        kind: str = "observational",
        interventions: Sequence[Mapping[str, Any]] | None = None,
        *,
        observed: Any = None,
        num_samples: int = 1000,
        query_nodes: Sequence[str] | None = None,
        seed: int | None = None,
        return_samples: bool = True,
        timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None,
    ) -> SampleResult:
        params: dict[str, Any] = {
            "model_id": model_id_of(model),
            "kind": kind,
            "interventions": to_jsonable(list(interventions or [])),
            "num_samples": num_samples,
            "query_nodes": list(query_nodes) if query_nodes is not None else None,
            "seed": seed,
            "return_samples": return_samples,
        }
        if observed is not None:
            params["observed"] = self._columns(observed, "observed")
        result = self._call("sample", params, timeout, on_progress)  # columns as they came
        samples = result.get("samples")
        attached = getattr(result, "attached", None)  # AttachedResult: the columns' bytes
        columns = columns_from_wire(samples, attached) if samples is not None else None
        return SampleResult.from_wire(dict(result), columns)  # raw: plain JSON, no bytes

    def models(self, *, timeout: Timeout = DEFAULT) -> list[dict[str, Any]]:
        """Every model the worker can serve, with ``where``: memory, disk or both."""
        return list(self.call("models.list", timeout=timeout)["models"])

    def drop(self, model: FitResult | str, *, timeout: Timeout = DEFAULT) -> None:
        """Forget a model, in memory and on disk."""
        self.call("models.drop", {"model_id": model_id_of(model)}, timeout=timeout)

    def save(self, model: FitResult | str, *, timeout: Timeout = DEFAULT) -> dict[str, Any]:
        """Persist a model in the worker's authenticated store; it then survives restarts."""
        return dict(self.call("models.save", {"model_id": model_id_of(model)}, timeout=timeout))

    def prune(
        self, *, older_than_s: float | None = None, max_total_mb: float | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[str]:
        """Delete persisted models by age and/or down to a total size; returns their ids."""
        params = {"older_than_s": older_than_s, "max_total_mb": max_total_mb}
        return list(self.call("models.prune", params, timeout=timeout)["pruned"])

    def report(
        self,
        model: FitResult | str,
        path: str | Path,
        *,
        format: str | None = None,
        samples: Mapping[str, Any] | None = None,
        timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        """Render a model as a self-contained HTML or SVG document and write it to ``path``.

        ``format`` defaults to the path's suffix (.html/.htm → html, .svg → svg).
        ``samples`` is a sample request (kind, interventions, num_samples, query_nodes,
        seed, observed): its histograms are drawn beside an observational sample.
        """
        target = Path(path)
        if format is None:
            format = REPORT_FORMATS.get(target.suffix.lower())
            if format is None:
                raise ValueError(f"cannot tell the report format from {target.name!r}: "
                                 f"use a .html or .svg file name, or pass format='html'|'svg'")
        params: dict[str, Any] = {"model_id": model_id_of(model), "format": format}
        if samples is not None:
            spec = dict(samples)
            observed = spec.pop("observed", None)
            params["samples"] = to_jsonable(spec)
            if observed is not None:
                params["samples"]["observed"] = self._columns(observed, "samples.observed")
        result = self.call("report", params, timeout, on_progress)
        target.write_text(result["content"], encoding="utf-8", newline="")
        return target

    # -- causal questions -----------------------------------------------------------
    def effect(
        self,
        model: FitResult | str,
        target: str,
        alternative: Sequence[Mapping[str, Any]],
        reference: Sequence[Mapping[str, Any]] = (),
        *,
        observed: Any = None,
        confidence: float | None = None,
        num_bootstrap: int | None = None,
        refit: bool = True,
        timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None,
        **knobs: Any,
    ) -> EffectResult:
        """Average causal effect of ``alternative`` vs ``reference`` interventions on ``target``.

        Every question takes ``confidence`` (e.g. 0.95: the answer is the median of
        ``num_bootstrap`` replicates, with intervals), ``refit`` (True: each replicate refits
        the model on resampled training rows, DoWhy's ``fit_and_compute``; False: asks again
        on the fitted model) and its sample knobs (docs/PROTOCOL.md).
        """
        params = {"model_id": model_id_of(model), "target": target,
                  "alternative": to_jsonable(list(alternative)),
                  "reference": to_jsonable(list(reference)),
                  **uncertainty(confidence, num_bootstrap, refit), **knobs}
        if observed is not None:
            params["observed"] = self._columns(observed, "observed")
        return EffectResult.from_wire(self.call("effect", params, timeout, on_progress))

    def arrow_strength(self, model: FitResult | str, target: str, *,
                       confidence: float | None = None, num_bootstrap: int | None = None,
                       refit: bool = True, timeout: Timeout = DEFAULT,
                       on_progress: ProgressCallback | None = None, **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target,
                  **uncertainty(confidence, num_bootstrap, refit), **knobs}
        result = self.call("arrow_strength", params, timeout, on_progress)
        return Attribution.from_wire(result, "strengths")

    def influence(self, model: FitResult | str, target: str, *, confidence: float | None = None,
                  num_bootstrap: int | None = None, refit: bool = True,
                  timeout: Timeout = DEFAULT, on_progress: ProgressCallback | None = None,
                  **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target,
                  **uncertainty(confidence, num_bootstrap, refit), **knobs}
        result = self.call("influence", params, timeout, on_progress)
        return Attribution.from_wire(result, "influence")

    def anomaly(self, model: FitResult | str, target: str, rows: Any, *,
                confidence: float | None = None, num_bootstrap: int | None = None,
                refit: bool = True, timeout: Timeout = DEFAULT,
                on_progress: ProgressCallback | None = None, **knobs: Any) -> AnomalyResult:
        params = {"model_id": model_id_of(model), "target": target,
                  "rows": self._columns(rows, "rows"),
                  **uncertainty(confidence, num_bootstrap, refit), **knobs}
        result = self.call("anomaly", params, timeout, on_progress)
        return AnomalyResult.from_wire(result)

    def distribution_change(self, model: FitResult | str, target: str, old: Any, new: Any, *,
                            confidence: float | None = None, num_bootstrap: int | None = None,
                            refit: bool = True, timeout: Timeout = DEFAULT,
                            on_progress: ProgressCallback | None = None,
                            **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target,
                  "old": self._columns(old, "old"), "new": self._columns(new, "new"),
                  **uncertainty(confidence, num_bootstrap, refit), **knobs}
        result = self.call("distribution_change", params, timeout, on_progress)
        return Attribution.from_wire(result, "attributions")


def uncertainty(confidence: float | None, num_bootstrap: int | None,
                refit: bool) -> dict[str, Any]:
    """A question's bootstrap params, sent only when an interval is asked for: without
    ``confidence`` the request is the point question, as before these params."""
    if confidence is None:
        return {}
    params: dict[str, Any] = {"confidence": confidence, "refit": refit}
    if num_bootstrap is not None:
        params["num_bootstrap"] = num_bootstrap
    return params


class PendingCall:
    """A request in flight (``Worker.submit``): wait for it, or cancel it from any thread.

    ``cancel()`` sends ``$/cancelRequest``: a queued request is dropped, a running one
    stops at its next checkpoint; ``result()`` then raises RequestCancelled (or returns
    the result, if it finished first). The worker keeps its pid, models and warm state.
    """

    def __init__(self, worker: Worker, link: Link, method: str, request_id: int,
                 future: Future[Any]) -> None:
        self.worker = worker
        self.link = link
        self.method = method
        self.request_id = request_id
        self.future = future

    @property
    def channel(self) -> Channel:
        return self.link.channel

    def result(self, timeout: Timeout = DEFAULT) -> Any:
        """The result as plain JSON (as ``Worker.call``); on timeout, the Worker's policy
        (cancel, grace, kill/disconnect)."""
        return plain_result(self._wait(timeout))

    def _wait(self, timeout: Timeout) -> Any:
        """The result as it arrived (columns in their wire encoding)."""
        return self.worker._wait(self, timeout)

    def cancel(self) -> bool:
        """Ask the worker to cancel; False if the request is no longer pending."""
        return self.channel.cancel(self.request_id)

    def done(self) -> bool:
        return self.future.done()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<PendingCall {self.method!r} id={self.request_id} {state}>"


#: Report file suffix → the worker's report format.
REPORT_FORMATS: Final = {".html": "html", ".htm": "html", ".svg": "svg"}


def with_deadline(params: Any, timeout_s: float | None) -> Any:
    """``params`` with the worker-side deadline ``timeout_s`` added (params by name only)."""
    if timeout_s is None:
        return params
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
            0 < timeout_s <= MAX_TIMEOUT_S):
        raise invalid_argument("timeout_s", f"must be a number of seconds in "
                               f"(0, {MAX_TIMEOUT_S}], got {timeout_s!r}")
    if params is not None and not isinstance(params, Mapping):
        raise invalid_argument("timeout_s", "needs params by name (an object), not an array")
    return {**(params or {}), "timeout_s": timeout_s}


def model_id_of(model: FitResult | str) -> str:
    return model.model_id if isinstance(model, FitResult) else model


_live_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_live_workers() -> None:
    """No worker outlives the interpreter that started it."""
    for worker in list(_live_workers):
        try:
            worker.close()
        except Exception:  # best effort at exit: report, never raise from atexit
            log.debug("closing worker at exit failed", exc_info=True)
