"""Worker: start, call, typed methods, close. The client-side owner of one worker session.

The Worker owns policy (timeouts, restarts, state); the Channel owns I/O. Calls are
thread-safe. ``Worker()`` is a private stdio worker: its own process, started lazily and
stopped by ``close``. ``Worker.connect()`` is a connection to the user's daemon (started
when none serves; see _daemon.py): ``close`` closes only the connection.

A call that times out is first cancelled (``$/cancelRequest``); if the worker does not
answer within ``cancel_grace`` seconds, a private worker is killed (it may be stuck in
C code) and a daemon connection is dropped (a shared daemon is never killed); the next
call starts a fresh worker or connection. A crash fails every pending call with
WorkerCrashed and the next call restarts, up to ``max_restarts`` times in a row.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

from . import _daemon, _process
from ._channel import Channel, Progress
from ._isolated import absolute_args, python_argv
from ._locate import find_worker_python
from ._restart import RestartPolicy
from ._version import __version__
from ._wire import columns_from_wire, fit_params, to_jsonable, traces_to_wire
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
    FitResult,
    SampleResult,
)

log = logging.getLogger("scm_client.worker")

PROTOCOL_VERSION: Final = 1
#: how long a call waits for a daemon that closed on it to exit before starting another
DAEMON_EXIT_WAIT_S: Final = 5.0
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
    ) -> None:
        """A private worker process (see ``connect`` for the shared daemon).

        ``cancel_grace``: after a call's timeout, how long to wait for the worker to answer
        its cancellation before killing it (0: kill at once, without cancelling).
        ``daemon``: connect to the user's daemon instead (``Worker.connect`` sets it).
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
        self._policy = RestartPolicy(max_restarts)
        self._state = State.NOT_STARTED
        self._channel: Channel | None = None
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
            channel = self._channel
            if self._state is State.RUNNING and channel is not None and not channel.alive:
                return State.CRASHED
            return self._state

    @property
    def pid(self) -> int | None:
        """The worker's pid (a daemon's, over a socket); None before the first start."""
        return self._channel.pid if self._channel is not None else None

    def start(self) -> dict[str, Any]:
        """Start the worker now (otherwise the first call does); returns the handshake."""
        self._ensure_running()
        return self.info

    def _ensure_running(self) -> Channel:
        with self._lifecycle:
            if self._state is State.CLOSED:
                raise WorkerClosed("this Worker is closed")
            if self._channel is not None and self._channel.alive:
                return self._channel
            if self._channel is not None:
                self._reap(self._channel)
                self._let_dead_daemon_go(self._channel)
                if not self._policy.may_restart():
                    raise WorkerStartError(
                        f"the worker failed {self._policy.restarts_in_a_row + 1} times in a row; "
                        f"giving up (max_restarts={self._policy.max_restarts})",
                        self._channel.stderr_tail(),
                    )
                self._policy.record_restart()
                log.warning("restarting the worker (restart %d in a row)",
                            self._policy.restarts_in_a_row)
            channel, where = self._open_daemon() if self.daemon else self._spawn()
            self.starts += 1
            try:
                self._channel = self._handshake(channel, where)
            except WorkerCrashed:  # a daemon died under the handshake: wait for it next time
                self._channel = channel
                raise
            self._state = State.RUNNING
            return self._channel

    def _let_dead_daemon_go(self, channel: Channel) -> None:
        """A daemon that closed on us is dying: wait (bounded) for it to be gone, so the next
        connect reaches its successor and not its last moments."""
        if self.daemon is not None and channel.crashed and channel.pid is not None:
            _daemon.wait_gone(channel.pid, DAEMON_EXIT_WAIT_S)

    def _spawn(self) -> tuple[Channel, str]:
        """A private worker process and the interpreter it runs."""
        python = find_worker_python(self.python, auto_setup=self.auto_setup)
        argv = python_argv(python, "-m", "scm_worker", *self.worker_args)
        try:
            proc = _process.spawn(argv, self.env)
        except OSError as exc:
            raise WorkerStartError(f"could not start {argv[0]}: {exc}") from exc
        return Channel(proc, self._on_notification), argv[0]

    def _open_daemon(self) -> tuple[Channel, str]:
        """A connection to the user's daemon (started if none serves) and its socket path."""
        assert self.daemon is not None
        connection = _daemon.start(self.daemon)
        return Channel(connection.transport(), self._on_notification), str(connection.path)

    def _handshake(self, channel: Channel, where: str) -> Channel:
        try:
            hello = {"client": f"scm_client {__version__}", "protocol_version": PROTOCOL_VERSION,
                     "column_encodings": ["json", "binary", "attached"]}
            _, future = channel.request("initialize", hello)
            info = future.result(timeout=self.start_timeout)
        except (WorkerError, FutureTimeout) as exc:
            self._reap(channel)
            reason = "timed out" if isinstance(exc, FutureTimeout) else str(exc).splitlines()[0]
            if self.daemon is not None and isinstance(exc, WorkerCrashed):
                # the daemon died under us (killed): a crash, and the next call starts another
                raise WorkerCrashed(f"the daemon died during the handshake: {reason}", None,
                                    channel.stderr_tail()) from exc
            raise WorkerStartError(f"worker handshake failed: {reason}",
                                   channel.stderr_tail()) from exc
        if info.get("protocol_version") != PROTOCOL_VERSION:
            self._reap(channel)
            raise WorkerStartError(
                f"protocol mismatch: client speaks {PROTOCOL_VERSION}, "
                f"worker {info.get('protocol_version')}"
            )
        if info.get("worker_version") != __version__:
            self._reap(channel)
            if self.daemon is None:
                raise WorkerVersionMismatch(info.get("worker_version"), __version__, where)
            raise WorkerVersionMismatch(
                info.get("worker_version"), __version__, where,
                "it is not used; run `scm daemon stop` (this socket's daemon) and retry, "
                "or pass --no-daemon / set SCM_DAEMON=off")
        self.info = info
        return channel

    def _reap(self, channel: Channel) -> None:
        """Make sure a dead or abandoned private worker and its children are gone; on a
        daemon, only our connection (the daemon serves others)."""
        if channel.proc is None:
            channel.disconnect(WorkerClosed("the connection to the daemon was closed"))
            return
        _process.kill(channel.proc)
        channel.join()

    def close(self) -> None:
        """Ask a private worker to shut down, then SIGTERM, then SIGKILL; on a daemon, close
        the connection only (the daemon keeps serving). Idempotent."""
        self.finish_close(self.begin_close())

    def begin_close(self) -> Closing | None:
        """The first half of ``close``: mark the Worker closed and send ``shutdown``, no wait.

        ``finish_close`` waits and reaps. Split so that a WorkerPool asks every worker to
        stop before it waits for any (execnet's ``Group.terminate``). None: nothing to stop.
        """
        with self._lifecycle:
            if self._state is State.CLOSED:
                return None
            channel, self._channel = self._channel, None
            self._state = State.CLOSED
        if channel is None:
            return None
        if channel.proc is None:
            channel.disconnect(WorkerClosed("this Worker is closed"))
            self.last_stop = "disconnected"
            _live_workers.discard(self)
            return None
        return Closing(channel, self._send_shutdown(channel))

    def finish_close(self, closing: Closing | None) -> None:
        """The second half of ``close``: wait for the reply and the exit, escalate, reap."""
        if closing is None:
            return
        asked = _replied(closing.shutdown, self.shutdown_timeout)
        assert closing.channel.proc is not None  # begin_close hands over private workers only
        self.last_stop = _process.stop(closing.channel.proc, asked, self.shutdown_timeout)
        closing.channel.join()
        _live_workers.discard(self)

    def _send_shutdown(self, channel: Channel) -> Future[Any] | None:
        if not channel.alive:
            return None
        try:
            return channel.request("shutdown")[1]
        except WorkerError:
            return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------
    def call(
        self, method: str, params: Any = None, timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None, *, timeout_s: float | None = None,
    ) -> Any:
        """Send one request and wait for its result; raises a WorkerError subclass.

        ``on_progress`` receives this call's ``progress`` notifications only (other threads'
        calls on the same Worker go to theirs); without it, the Worker's ``on_progress``.
        On timeout: cancel, wait ``cancel_grace``, then kill (private) or disconnect
        (daemon); ``WorkerTimeout.outcome`` says which.

        ``timeout_s``: the worker's own deadline for the request, counted from its arrival,
        queued or running (RequestCancelled when it runs out; the worker and the connection
        serve on). ``timeout`` is how long this call waits; the two are independent.
        """
        return self.submit(method, params, on_progress, timeout_s=timeout_s).result(timeout)

    def submit(
        self, method: str, params: Any = None, on_progress: ProgressCallback | None = None,
        *, timeout_s: float | None = None,
    ) -> PendingCall:
        """Send one request without waiting: a handle to wait on, or cancel from any thread.
        ``timeout_s`` as in ``call``."""
        params = with_deadline(params, timeout_s)
        channel = self._ensure_running()
        request_id, future = channel.request(method, params, on_progress)
        return PendingCall(self, channel, method, request_id, future)

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
        """Cancel, wait the grace, then kill or disconnect; the outcome's name."""
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
        why = f"{call.method!r} timed out"
        if channel.proc is None:
            log.warning("%s after %ss and ignored its cancellation; dropping the connection "
                        "to daemon %s", why, limit, channel.pid)
            channel.disconnect(WorkerCrashed(f"the connection to the daemon was dropped "
                                             f"because {why}"))
            return "disconnected"
        log.warning("%s after %ss; killing worker %d", why, limit, channel.proc.pid)
        channel.fail_all(WorkerCrashed(f"the worker was killed because {why}"))
        _process.kill(channel.proc)
        return "killed"

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
        self._ensure_running()
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
        on_progress: ProgressCallback | None = None, **diagnostics: Any
    ) -> EvaluateResult:
        """Score a model on new rows; ``invertibility=True`` / ``falsify_graph=True`` add
        DoWhy's tests."""
        params = {"model_id": model_id_of(model), "traces": self._columns(traces), **diagnostics}
        return EvaluateResult.from_wire(self.call("evaluate", params, timeout, on_progress))

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
        result = self.call("sample", params, timeout, on_progress)
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
        timeout: Timeout = DEFAULT,
        on_progress: ProgressCallback | None = None,
        **knobs: Any,
    ) -> EffectResult:
        """Average causal effect of ``alternative`` vs ``reference`` interventions on ``target``."""
        params = {"model_id": model_id_of(model), "target": target,
                  "alternative": to_jsonable(list(alternative)),
                  "reference": to_jsonable(list(reference)), "confidence": confidence, **knobs}
        if observed is not None:
            params["observed"] = self._columns(observed, "observed")
        return EffectResult.from_wire(self.call("effect", params, timeout, on_progress))

    def arrow_strength(self, model: FitResult | str, target: str, *, timeout: Timeout = DEFAULT,
                       on_progress: ProgressCallback | None = None, **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target, **knobs}
        result = self.call("arrow_strength", params, timeout, on_progress)
        return Attribution(result["target"], result["strengths"], result)

    def influence(self, model: FitResult | str, target: str, *, timeout: Timeout = DEFAULT,
                  on_progress: ProgressCallback | None = None, **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target, **knobs}
        result = self.call("influence", params, timeout, on_progress)
        return Attribution(result["target"], result["influence"], result)

    def anomaly(self, model: FitResult | str, target: str, rows: Any, *, timeout: Timeout = DEFAULT,
                on_progress: ProgressCallback | None = None, **knobs: Any) -> AnomalyResult:
        params = {"model_id": model_id_of(model), "target": target,
                  "rows": self._columns(rows, "rows"), **knobs}
        result = self.call("anomaly", params, timeout, on_progress)
        return AnomalyResult(result["target"], result["scores"], result["attributions"], result)

    def distribution_change(self, model: FitResult | str, target: str, old: Any, new: Any, *,
                            timeout: Timeout = DEFAULT, on_progress: ProgressCallback | None = None,
                            **knobs: Any) -> Attribution:
        params = {"model_id": model_id_of(model), "target": target,
                  "old": self._columns(old, "old"), "new": self._columns(new, "new"), **knobs}
        result = self.call("distribution_change", params, timeout, on_progress)
        return Attribution(result["target"], result["attributions"], result)


class PendingCall:
    """A request in flight (``Worker.submit``): wait for it, or cancel it from any thread.

    ``cancel()`` sends ``$/cancelRequest``: a queued request is dropped, a running one
    stops at its next checkpoint; ``result()`` then raises RequestCancelled (or returns
    the result, if it finished first). The worker keeps its pid, models and warm state.
    """

    def __init__(self, worker: Worker, channel: Channel, method: str, request_id: int,
                 future: Future[Any]) -> None:
        self.worker = worker
        self.channel = channel
        self.method = method
        self.request_id = request_id
        self.future = future

    def result(self, timeout: Timeout = DEFAULT) -> Any:
        """The result; on timeout, the Worker's policy (cancel, grace, kill/disconnect)."""
        return self.worker._wait(self, timeout)

    def cancel(self) -> bool:
        """Ask the worker to cancel; False if the request is no longer pending."""
        return self.channel.cancel(self.request_id)

    def done(self) -> bool:
        return self.future.done()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<PendingCall {self.method!r} id={self.request_id} {state}>"


@dataclass(frozen=True)
class Closing:
    """A worker asked to shut down (``begin_close``), not yet reaped (``finish_close``)."""

    channel: Channel
    shutdown: Future[Any] | None


def _replied(shutdown: Future[Any] | None, timeout: float) -> bool:
    """Did the worker answer ``shutdown`` (so it is exiting on its own)?"""
    if shutdown is None:
        return False
    try:
        shutdown.result(timeout=timeout)
    except (WorkerError, FutureTimeout):
        return False
    return True


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
