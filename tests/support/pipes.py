"""A ``python -m scm_worker`` child over raw pipes: bytes in, reply lines out, stderr drained.

For the suites that test the protocol below the client (the 3.11 worker suite, the
reliability suite): they write exact bytes and read exact lines. Reader threads move
stdout lines into a queue, so a reply that never comes fails the test after a timeout
instead of hanging the suite, and drain stderr continuously (a full stderr pipe would
block the worker), keeping it for assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any

import pytest

from support.lines import LineQueue


class WorkerPipes:
    """One worker process; subclasses say how it is started and how requests get ids."""

    #: seconds a test waits for a line before it fails
    read_timeout = 10.0

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 new_session: bool = False) -> None:
        self.argv = argv
        self.new_session = new_session
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=new_session,
        )
        self.pid = self.proc.pid
        self._lines = LineQueue()
        self._stderr: list[bytes] = []
        self._stderr_changed = threading.Condition()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    # -- pumps ------------------------------------------------------------------
    # stop() closes the pipes; a process the worker started may still hold them open, so
    # a pump can be mid-read when its file closes, which ends it like EOF.
    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in iter(self.proc.stdout.readline, b""):
                self._lines.put(line)
        self._lines.end()

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(ValueError, OSError):
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

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    # -- reading ----------------------------------------------------------------
    def read_line(self, timeout: float | None = None) -> bytes:
        """The next stdout line; fails the test on timeout or when stdout closes."""
        timeout = self.read_timeout if timeout is None else timeout
        try:
            line = self._lines.next(timeout)
        except queue.Empty:
            pytest.fail(f"no line from the worker within {timeout}s\n--- stderr ---\n{self.stderr_text()[-3000:]}")
        if line is None:  # stays at EOF for later reads
            pytest.fail(f"the worker closed stdout (exit code {self.proc.poll()})\n"
                        f"--- stderr ---\n{self.stderr_text()[-3000:]}")
        return line

    def read_json(self, timeout: float | None = None) -> Any:
        """The next line as JSON: one newline-terminated line of ASCII (the worker writes nothing else)."""
        line = self.read_line(timeout)
        assert line.endswith(b"\n") and line.count(b"\n") == 1, f"not one reply line: {line[:200]!r}"
        line.decode("ascii")
        return json.loads(line)

    def expect_eof(self, timeout: float | None = None) -> None:
        """Stdout closes next, with no further line."""
        timeout = self.read_timeout if timeout is None else timeout
        try:
            line = self._lines.next(timeout)
        except queue.Empty:
            pytest.fail(f"stdout did not close within {timeout}s")
        assert line is None, f"expected EOF on stdout, got line {line!r}"

    def drain_pending_lines(self) -> list[bytes]:
        """Lines already received and not read (a failed test may leave some)."""
        return self._lines.pending()

    def stderr_text(self) -> str:
        with self._stderr_changed:
            return b"".join(self._stderr).decode("utf-8", "replace")

    def wait_for_stderr(self, text: str, timeout: float | None = None) -> None:
        timeout = self.read_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._stderr_changed:
            while text not in b"".join(self._stderr).decode("utf-8", "replace"):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{text!r} did not appear on the worker's stderr within {timeout}s")
                self._stderr_changed.wait(left)

    # -- ending -----------------------------------------------------------------
    def wait_exit(self, timeout: float | None = None) -> int:
        timeout = self.read_timeout if timeout is None else timeout
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout}s")

    def stop(self, grace: float = 15.0) -> None:
        """Close stdin and wait; then SIGKILL whatever is left (its whole group, if it leads one)."""
        if self.proc.poll() is None:
            try:
                self.close_stdin()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if self.new_session:
            kill_group(self.proc.pid)
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
