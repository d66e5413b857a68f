"""A real ``python -m scm_worker --listen PATH`` daemon and raw Unix-socket peers of it.

For the tests below the client: they start the daemon the way the client does (own
session, stdin from /dev/null, one announcement line on stdout), connect with plain
``socket.socket(AF_UNIX)`` and read exact lines. As in ``support.pipes``, a reader
thread moves lines into a queue so a reply that never comes fails the test after a
timeout instead of hanging the suite.

Socket paths are kept short on purpose: a Unix socket path is limited to 107 bytes,
which pytest's ``tmp_path`` under a long test name can exceed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.lines import LineQueue
from support.pipes import WorkerPipes, kill_group
from support.worker_env import ONE_THREAD

#: generous: a loaded 2-core machine shared by several suites must not flake
READ_TIMEOUT = 15.0
#: a daemon imports the worker stack before it announces itself
ANNOUNCE_TIMEOUT = 60.0


def short_dir(prefix: str = "scmd-") -> Path:
    """A fresh private directory under /tmp whose paths fit a Unix socket address."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def daemon_argv(path: Path, *flags: str, python: str = sys.executable) -> list[str]:
    """The daemon's command line: test methods on, in-memory store unless flags say otherwise."""
    # one thread unless the flags ask for more (a later --threads wins)
    argv = [python, "-m", "scm_worker", "--listen", str(path), "--test-methods", *ONE_THREAD]
    if not any(f in ("--store", "--no-store") for f in flags):
        argv.append("--no-store")
    if "--warmup" in flags:
        flags = tuple(f for f in flags if f != "--warmup")
    else:
        argv.append("--no-warmup")
    return [*argv, *flags]


class DaemonProcess:
    """One daemon process started as the client starts it; ``announcement`` is its line."""

    def __init__(self, path: Path, *flags: str, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 python: str = sys.executable) -> None:
        self.path = path
        self.argv = [*(prefix or []), *daemon_argv(path, *flags, python=python)]
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
        self.pid = self.proc.pid
        self._announced: queue.Queue[bytes] = queue.Queue()
        self._stderr = b""
        self._stderr_done = threading.Event()
        threading.Thread(target=self._read_announcement, daemon=True).start()
        self.announcement: dict[str, Any] | None = None

    def _read_announcement(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        rest = self.proc.stdout.read()  # the daemon closes stdout right after its line
        self._announced.put(line + rest)
        self._stderr = self.proc.stderr.read()
        self._stderr_done.set()

    def announced(self, timeout: float = ANNOUNCE_TIMEOUT) -> dict[str, Any]:
        """The one JSON line on stdout (stdout must then be at EOF: nothing else is written)."""
        if self.announcement is None:
            try:
                raw = self._announced.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"daemon {self.pid} announced nothing within {timeout}s")
            assert raw.count(b"\n") == 1 and raw.endswith(b"\n"), \
                f"not exactly one announcement line: {raw!r} (stderr: {self._stderr[-2000:]!r})"
            self.announcement = json.loads(raw)
        return self.announcement

    def ready(self) -> DaemonProcess:
        """Wait for ``listening`` (fails the test on any other announcement)."""
        message = self.announced()
        assert message.get("listening") == str(self.path), (message, self.log_text()[-3000:])
        assert message["pid"] == self.pid
        return self

    def connect(self, **kwargs: Any) -> SocketPeer:
        return SocketPeer(self.path, **kwargs)

    def startup_stderr(self, timeout: float = READ_TIMEOUT) -> str:
        """What the daemon wrote to its starter's stderr before its log took fd 2 over."""
        self.announced()
        self._stderr_done.wait(timeout)
        return self._stderr.decode(errors="replace")

    def log_path(self) -> Path:
        return self.path.with_suffix(".log")

    def log_text(self) -> str:
        try:
            return self.log_path().read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, text: str, timeout: float = READ_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} not in the daemon's log within {timeout}s:\n"
                            f"{self.log_text()[-3000:]}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = READ_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon {self.pid} did not exit within {timeout}s\n{self.log_text()[-3000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (the daemon's graceful stop), then SIGKILL its whole group."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
                pass
        kill_group(self.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class LinePeer:
    """Requests, cancels and replies over some line transport (``send_raw``/``read_line``)."""

    read_timeout = READ_TIMEOUT

    def __init__(self) -> None:
        self._ids = 0

    def send_raw(self, data: bytes) -> None:
        raise NotImplementedError

    def read_line(self, timeout: float | None = None) -> bytes:
        raise NotImplementedError

    def next_id(self) -> int:
        self._ids += 1
        return 2_000_000 + self._ids

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def request(self, method: str, params: Any = None, id_: Any = None) -> Any:
        """Send a request without waiting; returns its id."""
        request_id = self.next_id() if id_ is None else id_
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def cancel(self, request_id: Any) -> None:
        """``$/cancelRequest`` as the notification LSP defines."""
        self.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})

    def read_json(self, timeout: float | None = None) -> Any:
        line = self.read_line(timeout)
        assert line.endswith(b"\n") and line.count(b"\n") == 1, line[:200]
        return json.loads(line)

    def reply_to(self, request_id: Any, timeout: float | None = None,
                 notes: list[Any] | None = None) -> dict[str, Any]:
        """Read up to the reply for ``request_id``; notifications go to ``notes``; any other
        reply fails the test (callers that expect interleaved replies read them themselves)."""
        while True:
            message = self.read_json(timeout)
            if isinstance(message, dict) and "id" not in message:
                if notes is not None:
                    notes.append(message)
                continue
            assert isinstance(message, dict) and message.get("id") == request_id, \
                f"expected the reply to {request_id!r}, got {message}"
            return message

    def call(self, method: str, params: Any = None, id_: Any = None,
             timeout: float | None = None) -> dict[str, Any]:
        return self.reply_to(self.request(method, params, id_), timeout)

    def result(self, method: str, params: Any = None, timeout: float | None = None) -> Any:
        reply = self.call(method, params, timeout=timeout)
        assert "error" not in reply, reply
        return reply["result"]


class PipePeer(LinePeer):
    """The same calls over a stdio worker's pipes (``support.pipes.WorkerPipes``)."""

    def __init__(self, worker: WorkerPipes) -> None:
        super().__init__()
        self.worker = worker
        self.pid = worker.pid

    def send_raw(self, data: bytes) -> None:
        self.worker.send_raw(data)

    def read_line(self, timeout: float | None = None) -> bytes:
        return self.worker.read_line(self.read_timeout if timeout is None else timeout)


class SocketPeer(LinePeer):
    """A raw connection to a daemon: bytes in, one line at a time out."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.sock.settimeout(None)
        self._lines = LineQueue()
        self._send_lock = threading.Lock()
        #: (monotonic time, line) of every line in arrival order: for tests of reply order
        #: across connections, which one queue per connection cannot tell
        self.arrivals: list[tuple[float, bytes]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            for line in iter(stream.readline, b""):
                self.arrivals.append((time.monotonic(), line))
                self._lines.put(line)
        except OSError:
            pass
        self._lines.end()

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> bytes:
        timeout = self.read_timeout if timeout is None else timeout
        try:
            line = self._lines.next(timeout)
        except queue.Empty:
            pytest.fail(f"no line from the daemon within {timeout}s")
        if line is None:
            pytest.fail("the daemon closed the connection")
        return line

    def at_eof(self, timeout: float | None = None) -> bool:
        """True when the connection closes next, with no further line (False: still open)."""
        timeout = self.read_timeout if timeout is None else timeout
        try:
            line = self._lines.next(timeout)
        except queue.Empty:
            return False
        if line is None:
            return True
        pytest.fail(f"expected EOF, got line {line!r}")

    def pending(self) -> list[Any]:
        """Lines already received and not read, as JSON."""
        return [json.loads(line) for line in self._lines.pending()]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def remove_tree(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


#: ``start(*flags, path=None, wait=True, **kwargs)``, as daemon_starter yields it
Start = Callable[..., "DaemonProcess"]


@contextmanager
def daemon_starter(python: str = sys.executable) -> Iterator[Start]:
    """Real daemons (``--listen``) of ``python`` in a short private directory, every one
    stopped and the directory removed at the end: the fixtures' one way to start them.

    ``start(*flags, path=None, wait=True, **kwargs)``: ``path`` defaults to
    ``<dir>/run/d.sock`` (``start.directory`` is ``<dir>``); with ``wait`` the call returns
    once the daemon is listening; ``kwargs`` go to ``DaemonProcess``.
    """
    directory = short_dir()
    started: list[DaemonProcess] = []

    def start(*flags: str, path: Path | None = None, wait: bool = True, **kwargs: Any) -> DaemonProcess:
        kwargs.setdefault("python", python)
        daemon = DaemonProcess(path or directory / "run" / "d.sock", *flags, **kwargs)
        started.append(daemon)
        return daemon.ready() if wait else daemon

    start.directory = directory  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()
        remove_tree(directory)
