"""What every handler may reach: limits, the model store, the warm-up state, its own call.

The worker's state is shared by every connection; what belongs to one call (its
session, its request id, its cancellation) is thread-local, set by whichever thread
runs the call: a connection's reader for control requests, the compute thread for the
rest. Handlers keep one ``ctx`` argument and never see another call's session.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cancellation import NEVER, CancelToken
from .columns import ResultEncoding
from .limits import Limits

if TYPE_CHECKING:
    from .engine.store import ModelStore
    from .server.session import Sending, Session


class Warmup:
    """Tracks the background warm-up (DoWhy import and joblib pool start)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.seconds: float | None = None

    def finish(self, started: float, error: BaseException | None = None) -> None:
        self.seconds = time.monotonic() - started
        self.error = error
        self.done.set()

    def wait(self) -> None:
        """Block until warm-up ended; computations must not race it for the RNG."""
        self.done.wait()


class _Call(threading.local):
    """The call this thread is running: its session, request id and cancellation."""

    session: Session | None = None
    request_id: Any = None
    cancel: CancelToken = NEVER


@dataclass
class WorkerContext:
    """Shared state of one worker process; computations run one at a time."""

    limits: Limits
    store: ModelStore
    warmup: Warmup = field(default_factory=Warmup)
    test_methods: bool = False
    threads: int | None = None
    stop_requested: bool = False
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.monotonic)
    #: the socket a daemon serves on (None on stdio) and its idle timeout
    socket_path: str | None = None
    idle_timeout_s: float | None = None
    #: the scheduler and the listener report through these (``status``)
    scheduler: Any = None
    connections: Any = None
    _call: _Call = field(default_factory=_Call, repr=False)

    @contextmanager
    def calling(
        self, session: Session, request_id: Any = None, cancel: CancelToken = NEVER
    ) -> Iterator[None]:
        """Run a block as one call of ``session``: progress and ``initialize`` go to it."""
        call = self._call
        saved = (call.session, call.request_id, call.cancel)
        call.session, call.request_id, call.cancel = session, request_id, cancel
        try:
            yield
        finally:
            call.session, call.request_id, call.cancel = saved

    @property
    def session(self) -> Session | None:
        return self._call.session

    @property
    def current_request_id(self) -> Any:
        """Id of the request this thread runs, for progress notifications (None: nobody)."""
        return self._call.request_id

    @property
    def cancel(self) -> CancelToken:
        """The running call's cancellation: its checkpoint and its interruptible regions."""
        return self._call.cancel

    @property
    def result_columns(self) -> ResultEncoding:
        """How this call's client said (``initialize``) it reads result columns; attached
        parts need a request id to be held by, so a notification's are binary."""
        session = self._call.session
        if session is None:
            return "json"
        if session.result_columns == "attached" and self.current_request_id is None:
            return "binary"
        return session.result_columns

    def send_attached(self, parts: list[memoryview]) -> Sending:
        """Start sending this request's attached parts (``Session.send_attached``)."""
        session = self._call.session
        assert session is not None and self.current_request_id is not None
        return session.send_attached(self.current_request_id, parts)

    @property
    def n_jobs(self) -> int:
        """Processes for node-parallel model selection: the thread budget, else the cores."""
        return self.threads if self.threads is not None else (os.cpu_count() or 1)

    def progress(
        self, stage: str, done: int, total: int, node: str | None = None, **detail: Any
    ) -> None:
        """Send a ``progress`` notification about the current request (``node``, ``item``, …).

        Stages and their meaning are listed in docs/PROTOCOL.md. A notification (no id) has
        no one to tell, so it gets none.
        """
        session = self._call.session
        if self.current_request_id is None or session is None:
            return
        params: dict[str, Any] = {
            "request_id": self.current_request_id,
            "stage": stage,
            "done": done,
            "total": total,
        }
        if node is not None:
            params["node"] = node
        session.notify("progress", {**params, **detail})
