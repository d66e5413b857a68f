"""Helpers for the reliability suite: a raw-pipe worker driver, /proc inspection, data.

The suite runs on the client's Python 3.13 and starts the real 3.11 worker named by
SCM_WORKER_PYTHON. ``RawWorker`` bypasses the client so a test can write any bytes to
the worker's stdin; the client-level tests use ``scm_client.Worker`` itself.

Everything waits on a condition with a generous deadline (the CI machine has two
cores and may be busy); nothing sleeps and hopes.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from support.pipes import WorkerPipes
from support.worker_env import ONE_THREAD, worker_python

#: A reply that does not come within this many seconds fails the test (never hangs it).
READ_TIMEOUT = 30.0

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class RawWorker(WorkerPipes):
    """``python -m scm_worker`` from the worker env, leading its own process group."""

    read_timeout = READ_TIMEOUT

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        # one thread unless the args ask for more (a later --threads wins)
        argv = [worker_python(), "-m", "scm_worker", *ONE_THREAD, *args]
        super().__init__(argv, env=env, cwd=cwd, new_session=True)
        self._ids = 0

    def next_id(self) -> str:
        self._ids += 1
        return f"raw-{self._ids}"

    def call(self, method: str, params: Any = None, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
        """One request; its reply, checked to answer this very id."""
        id_ = self.next_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
        if params is not None:
            message["params"] = params
        self.send(message)
        reply = self.read_reply(timeout)
        assert isinstance(reply, dict) and reply.get("id") == id_, reply
        return reply

    def read_reply(self, timeout: float = READ_TIMEOUT) -> Any:
        """The next line that is not a server notification (``progress``)."""
        while True:
            message = self.read_json(timeout)
            if not (isinstance(message, dict) and "method" in message and "id" not in message):
                return message

    def result(self, method: str, params: Any = None, timeout: float = READ_TIMEOUT) -> Any:
        reply = self.call(method, params, timeout)
        assert "error" not in reply, reply
        return reply["result"]

    def assert_serving(self) -> None:
        assert self.result("ping") == "pong"


class StrayReplies(logging.Handler):
    """Collects the client's "reply for no pending request" warnings (a duplicated reply)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "no pending request" in message:
            self.records.append(message)


# -- /proc --------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def rss_kb(pid: int) -> int:
    return int(proc_status(pid)["VmRSS"].split()[0])


def socket_inodes(pid: int) -> set[int]:
    """Inodes of every socket ``pid`` holds open (its fd links read ``socket:[N]``)."""
    inodes: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


INET_TABLES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6")


def inet_socket_table(pid: int) -> dict[int, str]:
    """inode → "proto local remote" for every INET socket in ``pid``'s network namespace."""
    table: dict[int, str] = {}
    for proto in INET_TABLES:
        try:
            with open(f"/proc/{pid}/net/{proto}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9:
                table[int(cols[9])] = f"{proto} {cols[1]} -> {cols[2]}"
    return table


def unix_socket_inodes(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return set()
    return {int(cols[6]) for cols in (row.split() for row in rows) if len(cols) > 6}


# -- waiting ------------------------------------------------------------------------


def join_all(threads: Iterable[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"{thread.name} did not finish within {timeout}s"


# -- figures ------------------------------------------------------------------------

#: names a JSON file the tests' measured figures are merged into (docs/reliability_figures.json,
#: rendered into docs/RELIABILITY.md by benchmarks/reliability_figures.py); unset: none written
FIGURES_ENV = "SCM_RELIABILITY_FIGURES"


def record_figures(test: str, **figures: Any) -> None:
    """Merge ``figures`` under ``test`` into the figures file, stamped with the commit measured."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: shadows nothing
    import provenance

    report = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    report.setdefault("tests", {})[test] = figures
    report["measured"] = provenance.measured_at()
    report["machine"] = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


# -- data ---------------------------------------------------------------------------

CHAIN_GRAPH = {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}


def chain_traces(seed: int = 0, rows: int = 200) -> dict[str, list[float]]:
    """X → Y → Z, linear-Gaussian: fits in well under a second once DoWhy is loaded."""
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(rows)]
    ys = [2 * x + rng.gauss(0, 0.1) for x in xs]
    zs = [3 * y + rng.gauss(0, 0.1) for y in ys]
    return {"X": xs, "Y": ys, "Z": zs}


def fit_params(seed: int = 0, rows: int = 200, **config: Any) -> dict[str, Any]:
    return {"graph": CHAIN_GRAPH, "traces": chain_traces(seed, rows), "config": {"seed": seed, **config}}
