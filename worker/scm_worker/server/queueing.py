"""The fair queue: jobs per session, served round-robin, FIFO within one, under caps.

A session may hold at most ``max_queued_requests`` waiting requests and
``max_queued_bytes`` of their lines; every session's waiting and running lines together
at most ``max_inflight_bytes``. The caps are checked as a job is put, before it waits:
past one the job is refused (-32004), or, for a session that waits for room (stdio's one
client), its reader waits until a job is taken or done.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from ..cancellation import CancelToken
from ..errors import WorkerError, limit_exceeded, request_cancelled
from ..limits import Limits
from .deadlines import Deadline
from .session import Session

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
    #: the bytes of its line, what the queue's caps count
    size: int = 0
    #: its ``timeout_s``, and the deadline that enforces it once it is queued
    timeout_s: float | None = None
    deadline: Deadline | None = None

    def expired_because(self) -> str:
        return f"its timeout_s ({self.timeout_s:g} s) ran out"

    @classmethod
    def of(cls, session: Session, message: Any, size: int = 0) -> Job:
        single = isinstance(message, dict)
        request_id = message.get("id") if single else None
        method = message.get("method") if single else "batch"
        ids = frozenset(m.get("id") for m in (message if not single else [message])
                        if isinstance(m, dict) and isinstance(m.get("id"), (str, int, float)))
        return cls(session, message, request_id, method, ids, CancelToken(request_id),
                   size=size)


class FairQueue:
    """Jobs per session; ``take`` serves the sessions in turn; ``put`` enforces the caps."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._queues: OrderedDict[Session, deque[Job]] = OrderedDict()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._queued_bytes: dict[Session, int] = {}
        #: line bytes of every waiting and running job
        self.inflight_bytes = 0
        self._closed = False

    def put(self, job: Job, wait: bool = False) -> WorkerError | None:
        """Queue ``job``, or the -32004 that refuses it. ``wait``: wait for room instead,
        unless the job could never fit (then it is refused all the same)."""
        with self._lock:
            while (refusal := self._refusal(job)) is not None:
                if not wait or self._closed or self._never_fits(job):
                    return refusal
                self._room.wait()
            self._queues.setdefault(job.session, deque()).append(job)
            self._queued_bytes[job.session] = self._queued_bytes.get(job.session, 0) + job.size
            self.inflight_bytes += job.size
            self._ready.notify()
        return None

    def _refusal(self, job: Job) -> WorkerError | None:
        if job.end_of_input:
            return None
        if self._closed:
            return request_cancelled(job.request_id, "queued", SHUTTING_DOWN)
        limits = self.limits
        count = len(self._queues.get(job.session, ())) + 1
        queued = self._queued_bytes.get(job.session, 0) + job.size
        for limit, value, maximum in (
            ("max_queued_requests", count, limits.max_queued_requests),
            ("max_queued_bytes", queued, limits.max_queued_bytes),
            ("max_inflight_bytes", self.inflight_bytes + job.size, limits.max_inflight_bytes),
        ):
            if value > maximum:
                return limit_exceeded(limit, value, maximum)
        return None

    def _never_fits(self, job: Job) -> bool:
        return job.size > min(self.limits.max_queued_bytes, self.limits.max_inflight_bytes)

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job in turn, or None when none came within ``timeout``."""
        with self._lock:
            if not self._queues and not self._ready.wait_for(lambda: bool(self._queues), timeout):
                return None
            session, jobs = next(iter(self._queues.items()))
            job = jobs.popleft()
            del self._queues[session]
            if jobs:  # back of the line: the other sessions go first
                self._queues[session] = jobs
            self._unqueue(job)
            return job

    def release(self, job: Job) -> None:
        """A taken job is done: its bytes are no longer in flight."""
        with self._lock:
            self.inflight_bytes -= job.size
            self._room.notify_all()

    def _unqueue(self, job: Job) -> None:
        left = self._queued_bytes.pop(job.session, 0) - job.size
        if job.session in self._queues:
            self._queued_bytes[job.session] = left
        self._room.notify_all()

    def remove(self, session: Session, request_id: Any = None,
               job: Job | None = None) -> Job | None:
        """Take a waiting request of ``session`` (by id, or the job itself) out of the queue."""
        with self._lock:
            jobs = self._queues.get(session, deque())
            for waiting in jobs:
                if waiting is job or job is None and request_id in waiting.ids:
                    jobs.remove(waiting)
                    if not jobs:
                        del self._queues[session]
                    self._unqueue(waiting)
                    self.inflight_bytes -= waiting.size
                    return waiting
        return None

    def remove_all(self, session: Session | None = None) -> list[Job]:
        """Every waiting job of ``session`` (of every session when None), removed."""
        with self._lock:
            sessions = [session] if session is not None else list(self._queues)
            removed = [job for s in sessions for job in self._queues.pop(s, ())]
            for job in removed:
                self._queued_bytes.pop(job.session, None)
                self.inflight_bytes -= job.size
            self._room.notify_all()
            return removed

    def close(self) -> None:
        """Nothing more is queued; whoever waits for room is refused."""
        with self._lock:
            self._closed = True
            self._room.notify_all()

    def others(self, session: Session) -> list[Session]:
        """The sessions other than ``session`` with waiting jobs."""
        with self._lock:
            return [s for s in self._queues if s is not session]

    def count(self, session: Session) -> int:
        with self._lock:
            return len(self._queues.get(session, ()))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(jobs) for jobs in self._queues.values())
