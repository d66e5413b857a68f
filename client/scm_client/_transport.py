"""Byte transports under a Channel: a private worker's pipes, or a daemon's Unix socket.

A transport moves lines and knows how its peer died; the Channel above it owns the
framing and the id table. Both kinds answer the same questions: write a line, iterate
the lines read, is the peer alive, its exit code, and a crash "tail" for error messages:
a process's stderr (drained continuously, so a chatty worker never blocks on a full
pipe) or, for a daemon, which is not our child and whose stderr is its log file, that
log's last lines.
"""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ._process import exit_code_clearing_group

log = logging.getLogger("scm_client.worker")

TAIL_LINES = 200
#: how much of the end of a daemon's log is read for a crash tail
LOG_TAIL_BYTES = 64 * 1024


class Transport(Protocol):
    """What a Channel needs from the thing under it."""

    label: str  # names the reader thread, e.g. "12345" or "daemon-12345"
    pid: int | None

    def write(self, data: bytes) -> None:
        """Send bytes; raises OSError (BrokenPipeError, …) or ValueError once closed."""

    def read_lines(self) -> Iterator[bytes]:
        """The lines the peer writes, until EOF; may raise OSError/ValueError once closed."""

    def read_into(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the bytes after the line just read; fewer only at EOF."""

    def alive(self) -> bool: ...

    def exit_code(self, timeout: float) -> int | None:
        """The peer's exit code, waiting up to ``timeout``; None when unknown or running."""

    def tail(self) -> str: ...

    def eof_message(self) -> str:
        """What a WorkerCrashed says when the line stream ended."""

    def close(self, timeout: float = 5.0) -> None:
        """Release the transport's files (after the reader saw EOF, or to make it see one)."""


class PipeTransport:
    """A worker process we started: its stdin, stdout and a drained stderr."""

    def __init__(self, proc: subprocess.Popen[bytes], tail_lines: int = TAIL_LINES) -> None:
        self.proc = proc
        self.pid: int | None = proc.pid
        self.label = str(proc.pid)
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._drainer = threading.Thread(target=self._drain_stderr, name=f"scm-stderr-{proc.pid}",
                                         daemon=True)
        # Started before the Channel's reader: a worker that dies at once makes it join this.
        self._drainer.start()

    def write(self, data: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()

    def read_lines(self) -> Iterator[bytes]:
        stdout = self.proc.stdout
        assert stdout is not None
        yield from stdout

    def read_into(self, buffer: memoryview) -> int:
        stdout = self.proc.stdout
        assert isinstance(stdout, io.BufferedReader)  # spawned with bufsize=-1
        return stdout.readinto(buffer)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_code(self, timeout: float) -> int | None:
        """Asked once stdout ended: the exit code, the dead worker's group cleared."""
        code = exit_code_clearing_group(self.proc, timeout)
        self._drainer.join(timeout=1)
        return code

    def tail(self) -> str:
        return "\n".join(self._tail)

    def eof_message(self) -> str:
        return "the worker exited"

    def close(self, timeout: float = 5.0) -> None:
        self._drainer.join(timeout)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def _drain_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        try:
            for raw in stderr:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                self._tail.append(text)
                log.log(stderr_level(text), "%s", text)
        except (OSError, ValueError):
            pass


class SocketTransport:
    """One connection to a daemon's Unix socket; ``log_path`` is where its stderr goes."""

    def __init__(self, sock: socket.socket, log_path: Path | None, pid: int | None) -> None:
        self.sock = sock
        self.log_path = log_path
        self.pid = pid
        self.label = f"daemon-{pid}"
        self._reader = sock.makefile("rb")
        self._closed = threading.Event()

    def write(self, data: bytes) -> None:
        if self._closed.is_set():
            raise ValueError("the connection is closed")
        self.sock.sendall(data)

    def read_lines(self) -> Iterator[bytes]:
        try:
            yield from self._reader
        finally:
            self._closed.set()

    def read_into(self, buffer: memoryview) -> int:
        return self._reader.readinto(buffer)

    def alive(self) -> bool:
        return not self._closed.is_set()

    def exit_code(self, timeout: float) -> int | None:
        return None  # not our child: its exit code is its parent's (or init's) to collect

    def tail(self) -> str:
        return read_log_tail(self.log_path)

    def eof_message(self) -> str:
        return f"the daemon (pid {self.pid}) closed the connection"

    def close(self, timeout: float = 5.0) -> None:
        """Shut the socket down (the reader then sees EOF) and close it. Idempotent."""
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for closable in (self._reader, self.sock):
            try:
                closable.close()
            except OSError:
                pass


def read_log_tail(path: Path | None, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file; "" when there is none."""
    if path is None:
        return ""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(0, size - LOG_TAIL_BYTES))
            data = stream.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def stderr_level(text: str) -> int:
    """The worker logs "scm-worker[pid] LEVEL name: message"; anything else is DEBUG."""
    for level in ("ERROR", "WARNING", "CRITICAL"):
        if f"] {level} " in text:
            return logging.getLevelName(level)  # type: ignore[no-any-return]
    return logging.DEBUG
