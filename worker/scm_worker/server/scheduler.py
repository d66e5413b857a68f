"""One compute thread, fed by a fair queue: round-robin between sessions, FIFO within one.

DoWhy draws from the process-global random state, so computations run one at a time,
here; control requests (``ping``, ``status``, cancellation) never enter the queue, so
they are answered while a fit runs. A cancelled request that still waits is answered
-32800 at once; a running one is told through its CancelToken and answers -32800 itself.

What one session may hold is capped where it is queued (queueing.py), before it waits;
past a cap the request is refused -32004 at once. A request's ``timeout_s`` cancels it
as ``$/cancelRequest`` does, waiting or running (deadlines.py). A ``shutdown`` that would
stop other sessions' work is refused unless it says ``force``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..api.signatures import SHUTDOWN, take_timeout_s
from ..cancellation import Interrupted
from ..context import WorkerContext
from ..errors import (
    REQUEST_CANCELLED,
    WorkerError,
    internal_error,
    invalid_params,
    request_cancelled,
)
from . import session as sessions
from .deadlines import Deadlines
from .protocol import Dispatcher, Reply, encode_reply, error_reply
from .queueing import SHUTTING_DOWN, FairQueue, Job
from .session import Payload, Session

log = logging.getLogger(__name__)

#: how long a stopping worker waits for its sessions' outboxes to be written
FLUSH_AT_EXIT_S = 10.0


class Scheduler:
    """Runs queued jobs one at a time in its own thread; cancels and reports on them."""

    def __init__(self, ctx: WorkerContext, dispatcher: Dispatcher,
                 on_stop: Callable[[], None]) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.queue = FairQueue(ctx.limits)
        self.deadlines = Deadlines()
        self.served = 0
        self.last_active = time.monotonic()
        self._on_stop = on_stop
        self._running: Job | None = None
        self._lock = threading.Lock()
        self._stopping = False
        #: the session whose shutdown was accepted: the others' new requests are refused
        self._closing_for: Session | None = None
        self._thread = threading.Thread(target=self._serve, name="scm-compute", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- what the connections call ------------------------------------------------------
    def submit(self, job: Job) -> bool:
        """Queue ``job``, or answer at once why not; True when it was queued."""
        with self._lock:
            closing = self._closing_for
            stopping = self._stopping or closing is not None and closing is not job.session
        if stopping:
            self._answer_cancelled(job, "queued", SHUTTING_DOWN)
            return False
        try:
            timeout_s = self._admit(job)
        except WorkerError as refused:
            self._answer_error(job, refused)
            return False
        if timeout_s is not None:  # before it is queued: its run may start at once
            job.timeout_s = timeout_s
            job.deadline = self.deadlines.add(timeout_s, lambda: self._expire(job))
        refusal = self.queue.put(job, wait=job.session.when_full == "wait")
        if refusal is not None:
            self._answer_error(job, refusal)
            return False
        return True

    def _admit(self, job: Job) -> float | None:
        """The job's ``timeout_s`` (taken out of its params); a shutdown's ``force`` rule."""
        if not isinstance(job.message, dict):
            return None
        timeout_s = take_timeout_s(job.message, self.ctx.limits)
        if job.method == "shutdown":
            self._admit_shutdown(job)
        return timeout_s

    def _admit_shutdown(self, job: Job) -> None:
        """Refuse a shutdown that would stop other sessions' work, unless it says ``force``
        (then that work is cancelled now, and it goes first); later arrivals are refused."""
        force = SHUTDOWN.bind(job.message.get("params") or {}, self.ctx.limits)["force"]
        others = self.others_work(job.session)
        if others["running"] is not None or others["queued"]:
            if not force:
                raise invalid_params(
                    "force", f"other sessions' work would be stopped ({_work_text(others)}); "
                    "send shutdown with force: true to stop it", **others)
            log.warning("shutdown with force by session %s: stopping %s", job.session.label,
                        _work_text(others))
            self._stop_others(job.session, f"{SHUTTING_DOWN} (forced by {job.session.label})")
        with self._lock:
            self._closing_for = job.session

    def others_work(self, session: Session) -> dict[str, Any]:
        """The other sessions' running request (or None) and how many of theirs wait."""
        with self._lock:
            running = self._running
        queued = len(self.queue) - self.queue.count(session)
        mine = running is None or running.session is session or running.end_of_input
        return {"running": None if mine else self.running(), "queued": queued}

    def _stop_others(self, session: Session, reason: str) -> None:
        for other in self.queue.others(session):
            for job in self.queue.remove_all(other):
                self._answer_cancelled(job, "queued", reason)
        with self._lock:
            running = self._running
        if running is not None and running.session is not session:
            running.cancel.cancel(reason)

    def _expire(self, job: Job) -> None:
        """``timeout_s`` ran out: cancel the job as ``$/cancelRequest`` would, where it is."""
        why = job.expired_because()
        if self.queue.remove(job.session, job=job) is not None:
            self._answer_cancelled(job, "queued", why)
            return
        with self._lock:
            running = self._running
        if running is job:
            job.cancel.cancel(why)

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
        for job in dropped:
            self.deadlines.discard(job.deadline)
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
        self.queue.close()
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
            if job.deadline is not None and job.deadline.passed:  # ran out as it was taken
                self._answer_cancelled(job, "queued", job.expired_because())
                self.queue.release(job)
                continue
            self._run(job)
            with self._lock:
                stopping = self._stopping or self.ctx.stop_requested
            if stopping:
                self.stop()
                break
        if not sessions.flush_all(FLUSH_AT_EXIT_S):
            log.warning("replies still unwritten after %ss: exiting without them", FLUSH_AT_EXIT_S)
        self._on_stop()

    def _run(self, job: Job) -> None:
        """Run one job; it stops counting as running before its reply goes out, so a
        ``status`` its client sends after reading the reply never still shows it."""
        with self._lock:
            self._running = job
        job.started = time.monotonic()
        reply = None
        try:
            if not job.session.closed.is_set():  # nobody to answer: its session is gone
                reply = self._dispatch(job)
            job.message = None  # a big request's data must not outlive its computation
        finally:
            with self._lock:
                self._running = None
                self.served += 1
            self.deadlines.discard(job.deadline)
            self.queue.release(job)
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
        why = why or "its client cancelled it"
        self._answer(job, lambda id_: request_cancelled(id_, stage, why))

    def _answer_error(self, job: Job, error: WorkerError) -> None:
        """A job refused before it was queued: its error, for each of its requests."""
        if error.code == REQUEST_CANCELLED:
            self._answer_cancelled(job, "queued", SHUTTING_DOWN)
        else:
            self._answer(job, lambda _id: error)

    def _answer(self, job: Job, error_for: Callable[[Any], WorkerError]) -> None:
        """``error_for(id)`` for the job's request, or for each request with an id in its batch."""
        self.deadlines.discard(job.deadline)  # answered: its deadline has nothing left to do
        if job.end_of_input or job.message is None:
            return
        if job.request_id is None and isinstance(job.message, dict):
            return  # a notification: nothing to answer
        messages = job.message if isinstance(job.message, list) else [job.message]
        replies = []
        for message in messages:
            if isinstance(message, dict) and message.get("id") is not None:
                error = error_for(message["id"])
                replies.append(error_reply(error.code, error.message, error.data, message["id"]))
        if replies:
            job.session.send(encode_reply(replies[0] if isinstance(job.message, dict) else replies))


def _work_text(work: dict[str, Any]) -> str:
    """``{"running", "queued"}`` of ``others_work`` in words."""
    running = work["running"]
    parts = [f"{running['method']} running for {running['session']}"] if running else []
    return ", ".join([*parts, f"{work['queued']} request(s) queued"])


class _Nobody:
    def write(self, payload: Payload) -> None:
        return None

    def notify(self, method: str, params: dict[str, Any]) -> None:
        return None


_NOBODY = Session(_Nobody(), "internal")
