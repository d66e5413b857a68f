"""What every handler may reach: limits, the model store, the warm-up state, the writer."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .limits import Limits

if TYPE_CHECKING:
    from .protocol import LineWriter
    from .store import ModelStore


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


@dataclass
class WorkerContext:
    """Shared state of one worker process; requests are handled one at a time."""

    limits: Limits
    store: ModelStore
    writer: LineWriter
    warmup: Warmup = field(default_factory=Warmup)
    test_methods: bool = False
    threads: int | None = None
    stop_requested: bool = False
    #: id of the request being handled (one at a time), for progress notifications
    current_request_id: Any = None
    #: the client said (``initialize``) it reads binary columns: numeric samples go out so
    binary_results: bool = False
    pid: int = field(default_factory=os.getpid)

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
        if self.current_request_id is None:
            return
        params: dict[str, Any] = {
            "request_id": self.current_request_id,
            "stage": stage,
            "done": done,
            "total": total,
        }
        if node is not None:
            params["node"] = node
        self.writer.notify("progress", {**params, **detail})
