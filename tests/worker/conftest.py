"""Driving the real worker process over real pipes, line by line.

``WorkerProcess`` spawns ``python -m scm_worker`` with this interpreter (the worker env),
writes raw bytes to its stdin and reads its stdout one line at a time through a reader
thread and a queue, so a reply that never comes fails the test after ``timeout``
seconds instead of hanging the suite. stderr is drained continuously (a full stderr
pipe would block the worker) and kept for assertions.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Generous: a loaded 2-core machine must not flake. A missing reply costs this once.
READ_TIMEOUT = 10.0

_EOF = object()


class WorkerProcess:
    """One ``python -m scm_worker`` child; raw lines in, reply lines out."""

    def __init__(self, *args: str, test_methods: bool = True, warmup: bool = False) -> None:
        argv = [sys.executable, "-m", "scm_worker", "--no-store"]
        if not warmup:
            argv.append("--no-warmup")
        if test_methods:
            argv.append("--test-methods")
        argv.extend(args)
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stderr: list[bytes] = []
        self._stderr_changed = threading.Condition()
        self._ids = 0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- pumps ------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self._lines.put(line)
        self._lines.put(_EOF)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):  # type: ignore[union-attr]
            with self._stderr_changed:
                self._stderr.append(chunk)
                self._stderr_changed.notify_all()

    # -- writing ----------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        """One JSON value as one line (Python's json, so NaN would be written as NaN)."""
        self.send_raw(json.dumps(message).encode("utf-8") + b"\n")

    def next_id(self) -> int:
        self._ids += 1
        return 1_000_000 + self._ids

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    # -- reading ----------------------------------------------------------------
    def read_line(self, timeout: float = READ_TIMEOUT) -> bytes:
        """The next stdout line; fails the test on timeout or when stdout closes."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(
                f"no line from the worker within {timeout}s\n--- stderr ---\n{self.stderr_text()[-3000:]}"
            )
        if line is _EOF:
            self._lines.put(_EOF)  # stays at EOF for later reads
            pytest.fail(
                f"the worker closed stdout (exit code {self.proc.poll()})\n"
                f"--- stderr ---\n{self.stderr_text()[-3000:]}"
            )
        assert isinstance(line, bytes)
        return line

    def read_json(self, timeout: float = READ_TIMEOUT) -> Any:
        line = self.read_line(timeout)
        assert line.endswith(b"\n"), f"reply line not newline-terminated: {line!r}"
        assert line.count(b"\n") == 1
        return json.loads(line)

    def expect_eof(self, timeout: float = READ_TIMEOUT) -> None:
        """Stdout closes next, with no further line."""
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"stdout did not close within {timeout}s")
        assert item is _EOF, f"expected EOF on stdout, got line {item!r}"
        self._lines.put(_EOF)

    def drain_pending_lines(self) -> list[bytes]:
        """Lines already received and not read (a failed test may leave some)."""
        stale = []
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                return stale
            if item is _EOF:
                self._lines.put(_EOF)
                return stale
            stale.append(item)

    # -- conveniences -----------------------------------------------------------
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

    def wait_exit(self, timeout: float = READ_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout}s")

    def stderr_text(self) -> str:
        with self._stderr_changed:
            return b"".join(self._stderr).decode("utf-8", "replace")

    def wait_for_stderr(self, text: str, timeout: float = READ_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self._stderr_changed:
            while text not in b"".join(self._stderr).decode("utf-8", "replace"):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{text!r} did not appear on the worker's stderr within {timeout}s")
                self._stderr_changed.wait(left)

    def stop(self) -> None:
        """Close stdin, wait; kill if it does not go."""
        if self.proc.poll() is None:
            try:
                self.close_stdin()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=READ_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """Factory for workers with their own flags; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def spawn(*args: str, test_methods: bool = True, warmup: bool = False) -> WorkerProcess:
        worker = WorkerProcess(*args, test_methods=test_methods, warmup=warmup)
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
