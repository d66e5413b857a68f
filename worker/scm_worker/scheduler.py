"""One compute thread, fed by a fair queue: round-robin between sessions, FIFO within one.

DoWhy draws from the process-global random state, so computations run one at a time,
here; control requests (``ping``, ``status``, cancellation) never enter the queue, so
they are answered while a fit runs. A cancelled request that still waits is answered
-32800 at once; a running one is told through its CancelToken and answers -32800 itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cancellation import CancelToken, Interrupted
from .context import WorkerContext
from .errors import internal_error, request_cancelled
from .protocol import Dispatcher, Reply, encode_reply, error_reply
from .session import Payload, Session

log = logging.getLogger(__name__)

SHUTTING_DOWN = "the worker is shutting down"


@dataclass(eq=False)
class Job:
    """A request (or a batch, or a session's end) waiting for the compute thread."""

    session: Session
    message: Any
    #: set for a single request with an id: what its progress notifications name
    request_id: Any = None
    method: str | None = None
    #: the ids ``$/cancelRequest`` may name to cancel this job (a batch's ids)
    ids: frozenset[Any] = frozenset()
    cancel: CancelToken = field(default_factory=CancelToken)
    #: the end of a stdio session's input: stop once every earlier request is answered
    end_of_input: bool = False
    started: float | None = None

    @classmethod
    def of(cls, session: Session, message: Any) -> Job:
        single = isinstance(message, dict)
        request_id = message.get("id") if single else None
        method = message.get("method") if single else "batch"
        ids = frozenset(m.get("id") for m in (message if not single else [message])
                        if isinstance(m, dict) and isinstance(m.get("id"), (str, int, float)))
        return cls(session, message, request_id, method, ids, CancelToken(request_id))


class FairQueue:
    """Jobs per session; ``take`` serves the sessions in turn."""

    def __init__(self) -> None:
        self._queues: OrderedDict[Session, deque[Job]] = OrderedDict()
        self._ready = threading.Condition()

    def put(self, job: Job) -> None:
        with self._ready:
            self._queues.setdefault(job.session, deque()).append(job)
            self._ready.notify()

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job in turn, or None when none came within ``timeout``."""
        with self._ready:
            if not self._queues and not self._ready.wait_for(lambda: bool(self._queues), timeout):
                return None
            session, jobs = next(iter(self._queues.items()))
            job = jobs.popleft()
            del self._queues[session]
            if jobs:  # back of the line: the other sessions go first
                self._queues[session] = jobs
            return job

    def remove(self, session: Session, request_id: Any) -> Job | None:
        """Take a waiting request of ``session`` out of the queue, if it is there."""
        with self._ready:
            jobs = self._queues.get(session, deque())
            for job in jobs:
                if request_id in job.ids:
                    jobs.remove(job)
                    if not jobs:
                        del self._queues[session]
                    return job
        return None

    def remove_all(self, session: Session | None = None) -> list[Job]:
        """Every waiting job of ``session`` (of every session when None), removed."""
        with self._ready:
            sessions = [session] if session is not None else list(self._queues)
            return [job for s in sessions for job in self._queues.pop(s, ())]

    def __len__(self) -> int:
        with self._ready:
            return sum(len(jobs) for jobs in self._queues.values())


class Scheduler:
    """Runs queued jobs one at a time in its own thread; cancels and reports on them."""

    def __init__(self, ctx: WorkerContext, dispatcher: Dispatcher,
                 on_stop: Callable[[], None]) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.queue = FairQueue()
        self.served = 0
        self.last_active = time.monotonic()
        self._on_stop = on_stop
        self._running: Job | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="scm-compute", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- what the connections call ------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._lock:
            stopping = self._stopping
        if stopping:
            self._answer_cancelled(job, "queued", SHUTTING_DOWN)
            return
        self.queue.put(job)

    def cancel(self, session: Session, request_id: Any) -> str | None:
        """Cancel ``session``'s request ``request_id``: "queued", "running" or None (unknown)."""
        if not isinstance(request_id, (str, int, float)):
            return None  # not an id any request can have
        waiting = self.queue.remove(session, request_id)
        if waiting is not None:
            self._answer_cancelled(waiting, "queued")
            return "queued"
        with self._lock:
            running = self._running
        if running is not None and running.session is session and request_id in running.ids:
            running.cancel.cancel()
            return "running"
        return None

    def session_ended(self, session: Session) -> None:
        """A socket closed: its waiting requests are dropped, its running one stopped."""
        dropped = self.queue.remove_all(session)
        with self._lock:
            running = self._running
        mine = running if running is not None and running.session is session else None
        if mine is not None:
            mine.cancel.cancel("its connection closed")
        if dropped or mine is not None:
            log.info("session %s closed: %d waiting request(s) dropped%s", session.label,
                     len(dropped), ", the running one cancelled" if mine else "")

    def stop(self, reason: str = SHUTTING_DOWN) -> None:
        """Answer every waiting request -32800, stop the running one, then ``on_stop``."""
        with self._lock:
            self._stopping = True
            running = self._running
        for job in self.queue.remove_all():
            self._answer_cancelled(job, "queued", reason)
        if running is not None:
            running.cancel.cancel(reason)
        else:
            self.queue.put(Job(_NOBODY, None, end_of_input=True))  # wake the compute thread

    # -- what ``status`` reads -----------------------------------------------------------
    def running(self) -> dict[str, Any] | None:
        with self._lock:
            job = self._running
        if job is None or job.started is None:
            return None
        return {"method": job.method, "id": job.request_id, "session": job.session.label,
                "elapsed_s": round(time.monotonic() - job.started, 3)}

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or len(self.queue) > 0

    # -- the compute thread ----------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            job = self.queue.take()
            if job is None:
                continue
            if job.end_of_input:
                log.info("no more work: stopping")
                break
            self._run(job)
            with self._lock:
                stopping = self._stopping or self.ctx.stop_requested
            if stopping:
                self.stop()
                break
        self._on_stop()

    def _run(self, job: Job) -> None:
        """Run one job; it stops counting as running before its reply goes out, so a
        ``status`` its client sends after reading the reply never still shows it."""
        with self._lock:
            self._running = job
        job.started = time.monotonic()
        reply = None
        try:
            reply = self._dispatch(job)
            job.message = None  # a big request's data must not outlive its computation
        finally:
            with self._lock:
                self._running = None
                self.served += 1
            self.last_active = time.monotonic()
        if reply is not None:
            job.session.send(encode_reply(reply))

    def _dispatch(self, job: Job) -> Reply | list[Reply] | None:
        """The job's reply; whatever escapes the dispatcher must not end the compute thread."""
        try:
            with self.ctx.calling(job.session, job.request_id, job.cancel):
                return self.dispatcher.handle_message(job.message)
        except (Exception, Interrupted) as exc:
            log.exception("request %r failed outside its handler", job.request_id)
            error = internal_error(exc)
            return error_reply(error.code, error.message, error.data, job.request_id)

    def _answer_cancelled(self, job: Job, stage: str, why: str | None = None) -> None:
        if job.end_of_input or job.message is None:
            return
        if job.request_id is None and isinstance(job.message, dict):
            return  # a notification: nothing to answer
        replies = _cancelled_replies(job, stage, why)
        if replies:
            job.session.send(encode_reply(replies[0] if isinstance(job.message, dict) else replies))


def _cancelled_replies(job: Job, stage: str, why: str | None) -> list[Reply]:
    """-32800 for the job's request, or for each request with an id in its batch."""
    messages = job.message if isinstance(job.message, list) else [job.message]
    replies = []
    for message in messages:
        if isinstance(message, dict) and message.get("id") is not None:
            error = request_cancelled(message["id"], stage, why or "its client cancelled it")
            replies.append(error_reply(error.code, error.message, error.data, message["id"]))
    return replies


class _Nobody:
    def write(self, payload: Payload) -> None:
        return None

    def notify(self, method: str, params: dict[str, Any]) -> None:
        return None


_NOBODY = Session(_Nobody(), "internal")
