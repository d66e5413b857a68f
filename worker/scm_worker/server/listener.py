"""The daemon's socket: a private directory, one session per accepted peer, and no more.

Who may connect is decided three times, each on its own: the directory is 0700 and the
socket 0600 (the file system keeps other users out), and every accepted peer's uid is
read from the kernel (``SO_PEERCRED``) and refused unless it is the daemon's own.
There is no TCP listener. One daemon serves a path (daemon_lock.py): a socket file
found by the lock's holder is stale and is replaced.

No peer can take the accept loop down: connections beyond ``--max-connections`` (lowered
to fit the descriptor limit) get one -32004 line and are closed, accept's resource
errors (EMFILE, ENFILE, ENOMEM, ENOBUFS) are waited out with a growing pause while the
open sessions are served, and a session whose thread cannot start is refused alone.

A daemon whose socket path no longer names its socket (removed, replaced, its directory
gone) can never be reached again: it exits.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import stat
import struct
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, cast

from ..context import WorkerContext
from ..errors import INTERNAL_ERROR, PERMISSION_DENIED, WorkerError, limit_exceeded
from ..limits import READ_BUFFER_BYTES
from .connection import read_session
from .protocol import Dispatcher, LineWriter, Reply, encode_reply, error_reply
from .scheduler import Scheduler
from .session import Session

log = logging.getLogger(__name__)

#: a peer that stopped reading may block its session's writer thread this long, then it is
#: dropped (sooner when its outbox fills: session.Outbox); the compute thread never waits
SEND_TIMEOUT_S = 60
BACKLOG = 64
#: a daemon that lost its socket lets running work finish this long, then cancels it
SOCKET_LOST_GRACE_S = 30.0
#: accept failed for lack of a resource: an fd, kernel memory. Waited out, never fatal
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: the peer went before it was accepted, or a signal came: accept again at once
RETRY_ERRNOS = frozenset({errno.EINTR, errno.ECONNABORTED, errno.EAGAIN, errno.EPROTO})
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
#: descriptors kept for the daemon's own use (log, lock, loky's pipes, store files, /proc
#: reads) when RLIMIT_NOFILE is lower than ``--max-connections`` plus these
FD_RESERVE = 64


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

    def try_write(self, payload: bytes) -> int:
        """Write what the socket takes now, without waiting; how many bytes that was."""
        try:
            return self._conn.send(payload, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0

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


class SocketWatch:
    """Whether the socket path still names the socket this daemon bound: (st_dev, st_ino).

    Removed (a logout clearing ``XDG_RUNTIME_DIR``, a test's temporary HOME going) or
    replaced, the path leads no client here again: the daemon is unreachable and exits.
    """

    def __init__(self, path: Path, interval_s: float | None) -> None:
        self.path = path
        info = os.lstat(path)  # just bound: ours
        self._identity = (info.st_dev, info.st_ino)
        self.interval_s = interval_s
        self._next = time.monotonic() + (interval_s or 0.0)
        self.lost_at: float | None = None

    def ours(self) -> bool:
        """The path names our socket now (a transient error other than its absence: yes)."""
        try:
            info = os.lstat(self.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        except OSError:
            return True
        return (info.st_dev, info.st_ino) == self._identity

    def lost(self) -> bool:
        """True once the path stopped naming our socket (looked at every ``interval_s``)."""
        if self.lost_at is None and self.interval_s and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval_s
            if not self.ours():
                self.lost_at = time.monotonic()
                log.warning("%s no longer names its socket (removed or replaced): nobody can "
                            "connect any more; exiting once no work runs (at most %ss)",
                            self.path, SOCKET_LOST_GRACE_S)
        return self.lost_at is not None


class Backoff:
    """The pause after accept failed for lack of a resource: doubling, capped, said once."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.failures = 0

    def failed(self, exc: OSError) -> float:
        """Seconds to wait before accepting again."""
        if not self.failures:
            log.warning("accept failed (%s): pausing new connections, serving the open ones", exc)
        self.failures += 1
        self.delay = min(BACKOFF_MAX_S, max(BACKOFF_FIRST_S, self.delay * 2))
        return self.delay

    def succeeded(self) -> None:
        if self.failures:
            log.info("accepting again after %d failed accept(s)", self.failures)
        self.delay, self.failures = 0.0, 0


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

    def held(self) -> int:
        """Sessions whose thread and socket still exist (closed ones until they are removed):
        what ``--max-connections`` bounds."""
        with self._lock:
            return len(self._sessions)


class Listener:
    """Accepts peers until stopped, idle or unreachable; each gets a reader thread and session."""

    def __init__(self, server: socket.socket, ctx: WorkerContext, dispatcher: Dispatcher,
                 scheduler: Scheduler, idle_timeout_s: float | None, *,
                 control: Collection[str], watch: SocketWatch | None,
                 max_connections: int) -> None:
        self.server = server
        self.ctx = ctx
        self.dispatcher = dispatcher
        #: the methods each connection's reader answers itself (connection.read_session)
        self.control = control
        self.scheduler = scheduler
        self.idle_timeout_s = idle_timeout_s
        self.watch = watch
        self.max_connections = connection_cap(max_connections)
        self.connections = Connections()
        self.backoff = Backoff()
        ctx.connections = self.connections

    def serve(self, stopped: threading.Event, terminate: threading.Event) -> None:
        while not stopped.is_set():
            if terminate.is_set() or self._idle() or self._unreachable():
                terminate.clear()
                self.scheduler.stop()
            conn = self._accept(stopped)
            if conn is not None:
                self._welcome(conn)

    def _accept(self, stopped: threading.Event) -> socket.socket | None:
        """The next peer; None after the accept timeout, a peer that went, or a pause."""
        try:
            conn, _ = self.server.accept()
        except TimeoutError:
            return None
        except OSError as exc:
            if exc.errno in RETRY_ERRNOS:
                return None
            if exc.errno in RESOURCE_ERRNOS:
                stopped.wait(self.backoff.failed(exc))
                return None
            raise
        self.backoff.succeeded()
        return conn

    def _idle(self) -> bool:
        if not self.idle_timeout_s or self.connections.count() or self.scheduler.busy:
            return False
        quiet_since = max(self.connections.last_change, self.scheduler.last_active)
        if time.monotonic() - quiet_since < self.idle_timeout_s:
            return False
        log.info("idle for %ss with no connection: exiting", self.idle_timeout_s)
        return True

    def _unreachable(self) -> bool:
        """The socket is lost and no work runs or waits (or the grace for it is over)."""
        if self.watch is None or not self.watch.lost() or self.watch.lost_at is None:
            return False
        waited = time.monotonic() - self.watch.lost_at
        return not self.scheduler.busy or waited >= SOCKET_LOST_GRACE_S

    def _welcome(self, conn: socket.socket) -> None:
        """A session for the peer, or one error line and a closed connection; never raises."""
        try:
            conn.settimeout(None)
            pid, uid, _ = peer_credentials(conn)
            if uid != os.getuid():
                refuse(conn, pid, uid)
            elif (held := self.connections.held()) >= self.max_connections:
                refuse_over_cap(conn, pid, held + 1, self.max_connections)
            else:
                self._start_session(conn, pid)
        except OSError as exc:  # the peer went while we looked at it
            log.info("dropped a connection before its session started: %s", exc)
            conn.close()

    def _start_session(self, conn: socket.socket, pid: int) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT_S, 0))
        writer = LineWriter(_SocketStream(conn))  # type: ignore[arg-type]
        session = Session(writer, f"pid {pid}", at_end="cancel")
        self.connections.add(session)
        try:
            threading.Thread(target=self._read, args=(conn, session, writer),
                             name=f"scm-session-{session.id}", daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": out of threads or memory
            self.connections.remove(session)
            log.error("refused a connection from pid %d: no thread for its session (%s)", pid, exc)
            hang_up(conn, error_reply(INTERNAL_ERROR, "Internal error: the daemon could not "
                                      "start a thread for this connection; try again",
                                      {"type": type(exc).__name__, "reason": str(exc)}))

    def _read(self, conn: socket.socket, session: Session, writer: LineWriter) -> None:
        log.info("session %s connected", session.label)
        stream = cast(BinaryIO, conn.makefile("rb", buffering=READ_BUFFER_BYTES))
        shutdown = False
        try:
            shutdown = read_session(stream, session, self.ctx, self.dispatcher, self.scheduler,
                                    self.control)
        finally:
            if not shutdown:  # after shutdown its reply must still reach it; the process ends
                self.connections.remove(session)
                stream.close()
                writer.close()
                log.info("session %s disconnected", session.label)


def connection_cap(requested: int) -> int:
    """``--max-connections``, lowered at start so that connections alone never exhaust the
    descriptors (RLIMIT_NOFILE): at EMFILE even ``status`` fails, and the store's files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or requested <= soft - FD_RESERVE:
        return requested
    cap = max(1, soft - FD_RESERVE)
    log.warning("max_connections %d lowered to %d: RLIMIT_NOFILE is %d, of which %d are kept "
                "for the daemon's own files", requested, cap, soft, FD_RESERVE)
    return cap


def refuse(conn: socket.socket, pid: int, uid: int) -> None:
    """Tell a peer of another user why, log it, hang up."""
    log.warning("refused a connection from uid %d (pid %d): only uid %d may connect",
                uid, pid, os.getuid())
    message = f"Permission denied: this daemon serves uid {os.getuid()} only, not uid {uid}"
    hang_up(conn, error_reply(PERMISSION_DENIED, message, {"uid": uid}))


def refuse_over_cap(conn: socket.socket, pid: int, value: int, maximum: int) -> None:
    """A connection beyond ``--max-connections``: -32004 in the limits' shape, logged."""
    error: WorkerError = limit_exceeded("max_connections", value, maximum)
    log.warning("refused a connection from pid %d: %s", pid, error.message)
    hang_up(conn, error_reply(error.code, error.message, error.data))


def hang_up(conn: socket.socket, reply: Reply) -> None:
    """One error line, sent without waiting (a refused peer that does not read cannot hold
    the accept loop: the line fits an empty socket buffer, or is dropped), then close."""
    try:
        conn.setblocking(False)
        conn.send(encode_reply(reply))
    except OSError:
        pass
    conn.close()
