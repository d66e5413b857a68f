"""Requests' deadlines (``timeout_s``): one thread that calls back whatever ran out of time.

One thread for every deadline, not a timer each: a daemon may hold thousands of queued
requests. A deadline that is no longer needed (its request was answered) is forgotten
with ``discard``; its entry stays in the heap, without its callback, until its time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadline:
    """One registered deadline: when it runs out, and what to call then (None: discarded)."""

    def __init__(self, when: float, expire: Callable[[], None]) -> None:
        self.when = when
        self.expire: Callable[[], None] | None = expire

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.when


class Deadlines:
    """Calls each registered callback once its monotonic time has come, in its own thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, expire: Callable[[], None]) -> Deadline:
        deadline = Deadline(time.monotonic() + seconds, expire)
        with self._changed:
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="scm-deadlines",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()
        return deadline

    def discard(self, deadline: Deadline | None) -> None:
        if deadline is not None:
            with self._changed:
                deadline.expire = None  # the request (and what it holds) is let go now

    def _watch(self) -> None:
        while True:
            expire = self._next_due()
            try:
                expire()
            except Exception:  # a deadline's failure must not end the others'
                log.exception("a request's deadline failed to cancel it")

    def _next_due(self) -> Callable[[], None]:
        """Wait for the earliest deadline still wanted to pass; its callback."""
        with self._changed:
            while True:
                while self._heap and self._heap[0][2].expire is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._changed.wait()
                    continue
                when, _, deadline = self._heap[0]
                if time.monotonic() < when:
                    self._changed.wait(when - time.monotonic())
                    continue
                heapq.heappop(self._heap)
                expire, deadline.expire = deadline.expire, None
                if expire is not None:
                    return expire
