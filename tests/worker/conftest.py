"""Driving the real worker process over real pipes, line by line.

``WorkerProcess`` spawns ``python -m scm_worker`` with this interpreter (the worker env)
over ``support.pipes``: raw bytes in, one stdout line at a time out, a reply that never
comes fails the test after ``READ_TIMEOUT`` seconds instead of hanging the suite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.daemon import Start, daemon_starter
from support.ordering import longest_files_first
from support.pipes import WorkerPipes

#: Generous: a loaded 2-core machine must not flake. A missing reply costs this once.
READ_TIMEOUT = 10.0
#: durations side by side in make test (s): fuzz_worker 129, intervals 106, selection 97,
#: cancel 72, dowhy_answers 69, daemon 57, fast_quality 54 of 827 in all
LONGEST = ("test_fuzz_worker.py", "test_intervals.py", "test_selection.py", "test_cancel.py",
           "test_dowhy_answers.py", "test_daemon.py", "test_fast_quality.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first: under xdist (tox.ini: ``-n 2 --dist loadfile``) the short
    ones then even out where the two processes end."""
    longest_files_first(items, LONGEST)


class WorkerProcess(WorkerPipes):
    """``python -m scm_worker`` with this interpreter (the worker env), in-memory store."""

    read_timeout = READ_TIMEOUT

    def __init__(self, *args: str, test_methods: bool = True, warmup: bool = False,
                 threads: int | None = 1) -> None:
        # one thread (support.worker_env.FAST_ARGS says why) unless a test asks for more;
        # None: the library defaults, as DoWhy in this process has them
        argv = [sys.executable, "-m", "scm_worker", "--no-store"]
        if threads is not None:
            argv += ["--threads", str(threads)]
        if not warmup:
            argv.append("--no-warmup")
        if test_methods:
            argv.append("--test-methods")
        super().__init__([*argv, *args])
        self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return 1_000_000 + self._ids

    def call(self, method: str, params: Any = None, id_: Any = None) -> dict[str, Any]:
        """Send one request and return its reply object, checking it answers this id."""
        request_id = self.next_id() if id_ is None else id_
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        self.send(message)
        reply = self.read_json()
        assert isinstance(reply, dict), reply
        assert reply.get("id") == request_id, f"reply for another request: {reply}"
        return reply

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        assert "error" not in reply, reply
        return reply["result"]

    def assert_serving(self) -> None:
        """A ping right now gets its own pong as the very next line."""
        reply = self.call("ping")
        assert reply == {"jsonrpc": "2.0", "result": "pong", "id": reply["id"]}


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """Factory for workers with their own flags; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def spawn(*args: str, test_methods: bool = True, warmup: bool = False,
              threads: int | None = 1) -> WorkerProcess:
        worker = WorkerProcess(*args, test_methods=test_methods, warmup=warmup, threads=threads)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def _module_worker() -> Iterator[list[WorkerProcess]]:
    holder = [WorkerProcess()]
    yield holder
    holder[0].stop()


@pytest.fixture
def worker(_module_worker: list[WorkerProcess]) -> WorkerProcess:
    """A worker shared by a module's stateless request/response tests.

    Each test gets it with no unread line; if an earlier test killed it, a fresh one.
    """
    current = _module_worker[0]
    if current.proc.poll() is not None:
        current.stop()
        current = _module_worker[0] = WorkerProcess()
    current.drain_pending_lines()
    return current


@pytest.fixture
def start_daemon() -> Iterator[Start]:
    """Real daemons of this interpreter (``support.daemon.daemon_starter``); all stopped after."""
    with daemon_starter() as start:
        yield start
