"""Stopping a running request: checkpoints in the worker's own loops, interruption elsewhere.

A request is cancelled by its client (``$/cancelRequest``), by its connection closing,
or by the worker shutting down. Two ways stop it, each where it is safe:

* **Checkpoints** (``CancelToken.checkpoint``): the fit's node loop, ``debug.sleep``.
  The fit stops handing node tasks to joblib and lets the few in flight finish, because
  aborting a joblib ``Parallel`` kills its loky processes (the warm state).
* **Interruption** (``CancelToken.interruptible``): a DoWhy query runs in DoWhy's code,
  with no loop of ours to check in. Inside such a region a cancel raises ``Interrupted``
  in the compute thread itself, at its next bytecode (CPython's per-thread asynchronous
  exception); the region turns it into -32800. Only read-only computations are run as
  regions, so an interruption leaves no half-written model behind.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import WorkerError, request_cancelled


class Interrupted(BaseException):
    """Raised asynchronously in the compute thread; a BaseException so no ``except
    Exception`` in a library swallows it."""


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Schedule ``exc_type`` in thread ``thread_id`` (None clears a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None
    )


class CancelToken:
    """One request's cancellation: a flag, its checkpoint, its interruptible regions."""

    def __init__(self, request_id: Any = None) -> None:
        self.request_id = request_id
        self.reason = "its client cancelled it"
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._region_thread: int | None = None
        self._interrupt_sent = False

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str | None = None) -> None:
        """Ask the request to stop; interrupts it at once when it is in a region."""
        with self._lock:
            if reason is not None and not self._event.is_set():
                self.reason = reason
            self._event.set()
            if self._region_thread is not None and not self._interrupt_sent:
                _raise_in(self._region_thread, Interrupted)
                self._interrupt_sent = True

    def error(self) -> WorkerError:
        return request_cancelled(self.request_id, "running", self.reason)

    def checkpoint(self) -> None:
        """Raise -32800 when cancellation was asked for; a no-op otherwise."""
        if self._event.is_set():
            raise self.error()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, but wake and raise -32800 at a cancel."""
        if self._event.wait(seconds):
            raise self.error()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Run the block so that a cancel interrupts it wherever it is (see module doc)."""
        self.checkpoint()
        try:
            try:
                with self._lock:
                    self._region_thread = threading.get_ident()
                yield
            finally:
                with self._lock:
                    self._region_thread = None
                    if self._interrupt_sent:  # sent, maybe not raised yet: never let it escape
                        _raise_in(threading.get_ident(), None)
        except Interrupted:
            raise self.error() from None


#: the token of work nobody can cancel (warm-up, a Dask task, tests of the model code)
NEVER = CancelToken()
