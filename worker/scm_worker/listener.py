"""The daemon's socket: a private directory, one lock, one session per accepted peer.

Who may connect is decided three times, each on its own: the directory is 0700 and the
socket 0600 (the file system keeps other users out), and every accepted peer's uid is
read from the kernel (``SO_PEERCRED``) and refused unless it is the daemon's own.
There is no TCP listener. The lock (``flock`` beside the socket, held for the
daemon's life and released by the kernel however it dies) makes exactly one daemon
serve a path: a socket file found by the lock's holder is stale and is replaced.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

from .connection import read_session
from .context import WorkerContext
from .errors import PERMISSION_DENIED
from .limits import READ_BUFFER_BYTES
from .protocol import Dispatcher, LineWriter, encode_reply, error_reply
from .scheduler import Scheduler
from .session import Session

log = logging.getLogger(__name__)

#: a peer that stopped reading may block its session's writer thread this long, then it is
#: dropped (sooner when its outbox fills: session.Outbox); the compute thread never waits
SEND_TIMEOUT_S = 60
BACKLOG = 64


class AlreadyRunning(Exception):
    """Another daemon holds the lock of this socket path."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


class DirectoryRefused(Exception):
    """The socket's directory belongs to someone else, or cannot be made private."""


def prepare_directory(directory: Path) -> None:
    """Create the socket's directory 0700, or make an existing one of ours 0700."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise DirectoryRefused(f"{directory} belongs to uid {info.st_uid}, not {os.getuid()}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        directory.chmod(0o700)


def lock_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".lock")


def take_lock(socket_path: Path) -> int:
    """Hold the path's lock (the fd stays open for the daemon's life) and record our pid.

    The pid a previous holder recorded is that of a daemon that died without cleaning
    up (it no longer holds the lock): its orphaned joblib processes are reaped.
    """
    fd = os.open(lock_path(socket_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holders_pid(fd)
        os.close(fd)
        raise AlreadyRunning(holder) from None
    previous = _recorded_pid(fd)
    os.ftruncate(fd, 0)  # our pid first, so a losing starter reads it, not the dead one's
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, str(os.getpid()).encode())
    if previous is not None and previous != os.getpid():
        reap_orphans(previous)
    return fd


#: how long a losing starter waits for the lock's holder to write its pid, seconds
HOLDER_PID_WAIT = 1.0


def _holders_pid(fd: int) -> int | None:
    """The pid the holder recorded; it writes it just after taking the lock, so an empty
    file is read again for a moment (None if it stays empty)."""
    deadline = time.monotonic() + HOLDER_PID_WAIT
    while (pid := _recorded_pid(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def _recorded_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def reap_orphans(dead_daemon: int) -> list[int]:
    """SIGKILL what a killed daemon left: its process group's orphans, owned by us.

    A daemon leads its own process group (its starter gives it a new session), so its
    loky workers and resource trackers share the dead daemon's pid as their group id and,
    orphaned, have parent 1. Only such processes of our uid are touched.
    """
    reaped = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            owner = entry.stat().st_uid
        except OSError:
            continue
        ppid, pgid = int(fields[1]), int(fields[2])
        if pgid == dead_daemon and ppid == 1 and owner == os.getuid():
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                reaped.append(int(entry.name))
            except OSError:
                pass
    if reaped:
        log.info("reaped %d process(es) a killed daemon (pid %d) left: %s",
                 len(reaped), dead_daemon, reaped)
    return reaped


def bind(socket_path: Path) -> socket.socket:
    """Listen on ``socket_path`` (mode 0600), replacing a stale file: we hold the lock."""
    if socket_path.exists() or socket_path.is_symlink():
        log.info("replacing stale socket %s", socket_path)
        socket_path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # the file is born 0600: no moment where others may connect
    try:
        server.bind(str(socket_path))
    finally:
        os.umask(previous)
    os.chmod(socket_path, 0o600)
    server.listen(BACKLOG)
    server.settimeout(0.5)  # the accept loop looks at the idle clock and the stop flag
    return server


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process on the other end, as the kernel saw it connect."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class _SocketStream:
    """What LineWriter needs of a stream, over ``sendall`` (a socket write may be partial)."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn

    def write(self, payload: bytes | memoryview) -> None:
        self._conn.sendall(payload)

    def flush(self) -> None:
        return None

    def hang_up(self) -> None:
        """Shut the socket down without closing it: a write blocked on it fails now."""
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._conn.close()


class Connections:
    """The open sessions, for ``status`` and for the idle clock."""

    def __init__(self) -> None:
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self.last_change = time.monotonic()

    def add(self, session: Session) -> None:
        with self._lock:
            self._sessions.add(session)
            self.last_change = time.monotonic()

    def remove(self, session: Session) -> None:
        with self._lock:
            self._sessions.discard(session)
            self.last_change = time.monotonic()

    def count(self) -> int:
        """Sessions still open. A session is closed (``Session.closed``) before its work is
        cancelled and only later removed, so whoever sees that work stopped also sees the
        connection gone."""
        with self._lock:
            return sum(not session.closed.is_set() for session in self._sessions)


class Listener:
    """Accepts peers until stopped or idle; each gets a reader thread and its own session."""

    def __init__(self, server: socket.socket, ctx: WorkerContext, dispatcher: Dispatcher,
                 scheduler: Scheduler, idle_timeout_s: float | None) -> None:
        self.server = server
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.scheduler = scheduler
        self.idle_timeout_s = idle_timeout_s
        self.connections = Connections()
        ctx.connections = self.connections

    def serve(self, stopped: threading.Event, terminate: threading.Event) -> None:
        while not stopped.is_set():
            if terminate.is_set() or self._idle():
                terminate.clear()
                self.scheduler.stop()
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.ECONNABORTED):
                    continue
                raise
            self._welcome(conn)

    def _idle(self) -> bool:
        if not self.idle_timeout_s or self.connections.count() or self.scheduler.busy:
            return False
        quiet_since = max(self.connections.last_change, self.scheduler.last_active)
        if time.monotonic() - quiet_since < self.idle_timeout_s:
            return False
        log.info("idle for %ss with no connection: exiting", self.idle_timeout_s)
        return True

    def _welcome(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        pid, uid, _ = peer_credentials(conn)
        if uid != os.getuid():
            refuse(conn, pid, uid)
            return
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT_S, 0))
        writer = LineWriter(_SocketStream(conn))  # type: ignore[arg-type]
        session = Session(writer, f"pid {pid}", at_end="cancel")
        self.connections.add(session)
        threading.Thread(target=self._read, args=(conn, session, writer),
                         name=f"scm-session-{session.id}", daemon=True).start()

    def _read(self, conn: socket.socket, session: Session, writer: LineWriter) -> None:
        log.info("session %s connected", session.label)
        stream = cast(BinaryIO, conn.makefile("rb", buffering=READ_BUFFER_BYTES))
        shutdown = False
        try:
            shutdown = read_session(stream, session, self.ctx, self.dispatcher, self.scheduler)
        finally:
            if not shutdown:  # after shutdown its reply must still reach it; the process ends
                self.connections.remove(session)
                stream.close()
                writer.close()
                log.info("session %s disconnected", session.label)


def refuse(conn: socket.socket, pid: int, uid: int) -> None:
    """Tell a peer of another user why, log it, hang up."""
    log.warning("refused a connection from uid %d (pid %d): only uid %d may connect",
                uid, pid, os.getuid())
    message = f"Permission denied: this daemon serves uid {os.getuid()} only, not uid {uid}"
    reply: dict[str, Any] = error_reply(PERMISSION_DENIED, message, {"uid": uid})
    try:
        conn.sendall(encode_reply(reply))
    except OSError:
        pass
    conn.close()
