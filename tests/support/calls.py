"""Calls on a client ``Worker`` from background threads, and what is still pending (3.13 suites)."""

from __future__ import annotations

import threading
from typing import Any


def pending_calls(worker: Any) -> int:
    channel = worker._channel
    return 0 if channel is None else len(channel._pending)


def call_in_thread(worker: Any, method: str, params: Any = None, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    """Start ``worker.call`` in a thread; its result or exception lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(worker.call(method, params, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def join(thread: threading.Thread, timeout: float = 10.0) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), f"a call did not return within {timeout}s"
