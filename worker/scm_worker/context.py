"""What every handler may reach: limits, the model store, the warm-up state, the writer."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocol import LineWriter
    from .store import ModelStore


@dataclass(frozen=True)
class Limits:
    """Request-size limits; each is a worker flag and each breach is error -32004."""

    max_line_bytes: int = 256 * 1024 * 1024
    max_rows: int = 1_000_000
    max_nodes: int = 1_000
    max_edges: int = 20_000
    max_cells: int = 20_000_000
    max_num_samples: int = 1_000_000
    max_models: int = 64
    max_memory_mb: int = 4096

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


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
    started_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)

    @property
    def n_jobs(self) -> int:
        """Processes for node-parallel model selection: the thread budget, else the cores."""
        return self.threads if self.threads is not None else (os.cpu_count() or 1)

    def progress(self, stage: str, done: int, total: int, node: str | None = None, **detail: Any) -> None:
        """Send a ``progress`` notification about the current request (``node``, ``item``, …).

        Stages and their meaning are listed in docs/PROTOCOL.md. A notification (no id) has
        no one to tell, so it gets none.
        """
        if self.current_request_id is None:
            return
        params: dict[str, Any] = {"request_id": self.current_request_id, "stage": stage, "done": done, "total": total}
        if node is not None:
            params["node"] = node
        self.writer.notify("progress", {**params, **detail})
