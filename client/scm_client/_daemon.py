"""The user's daemons: where their sockets live, starting one (idempotently), status, stop.

One daemon per user and worker environment: the socket's name carries the scm-worker
version and the environment's key (its prefix, version and source digest, _identity), so
a daemon of another version, of another environment, or of source since edited is never
connected to (the handshake checks the version again). The daemon of an edited checkout
is left to idle out; ``status`` calls it stale and ``stop_all`` stops it.
Starting is safe to race: the worker holds a lock for its whole life, a loser prints
``already_running`` and exits, and every starter here simply connects until the winner
serves. Stopping escalates as a private worker's close does: ``shutdown``, SIGTERM, then
SIGKILL of the daemon's process group (it leads its own session).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from . import _rundir
from ._channel import Channel
from ._identity import Identity, identify
from ._isolated import CWD, absolute_args, python_argv
from ._locate import find_worker_python
from ._process import Escalation, escalate, signal_pgid
from ._transport import SocketTransport, read_log_tail
from ._version import __version__
from .errors import WorkerClosed, WorkerError, WorkerStartError

log = logging.getLogger("scm_client.daemon")

DIR_ENV: Final = _rundir.DIR_ENV
SWITCH_ENV: Final = "SCM_DAEMON"
OFF_VALUES: Final = frozenset({"off", "0", "false", "no"})
CONNECT_RETRY_S: Final = 0.05
READY_TAIL_LINES: Final = 50

#: how `stop` ended: the escalation ladder of _process, which both kinds of stop share
StopPath = Escalation


def daemon_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``SCM_DAEMON`` is off (or 0, false, no); the daemon is the default."""
    value = (os.environ if environ is None else environ).get(SWITCH_ENV, "")
    return value.strip().lower() not in OFF_VALUES


# -- where it lives --------------------------------------------------------------------

#: how a daemon's socket is named, for its version and environment key (16 hex digits)
SOCKET_NAME: Final = "daemon-{version}-{key}.sock"
SOCKET_GLOB: Final = "daemon-*.sock"


def socket_name(identity: Identity) -> str:
    """The socket of this client's version for the worker environment ``identity``."""
    return SOCKET_NAME.format(version=__version__, key=identity.environment_key)


def runtime_dir() -> Path:
    """The user's private directory of daemon sockets (see _rundir: 0700, ours, findable)."""
    return _rundir.runtime_dir(len(SOCKET_NAME.format(version=__version__, key="0" * 16)))


def socket_path(python: str | None = None, *, auto_setup: bool | None = False) -> Path:
    """The socket of the daemon for the worker environment of ``python`` (found as every
    command finds it when None): ``runtime_dir() / daemon-<version>-<key>.sock``.

    The key names the environment, its version and its source (_identity): a daemon of
    another environment, or of source that has changed since, is never connected to.
    """
    located = find_worker_python(python, auto_setup=auto_setup)
    return runtime_dir() / socket_name(identify(located))


def sockets() -> list[Path]:
    """Every daemon socket file in the runtime directory, whatever its version or key."""
    return sorted(runtime_dir().glob(SOCKET_GLOB))


def log_path(path: Path | None = None) -> Path:
    """The daemon's log: its socket path with the suffix ``.log``."""
    return (path or socket_path()).with_suffix(".log")


# -- connecting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """A connected socket to a daemon, its pid (from SO_PEERCRED), and whether we started it."""

    sock: socket.socket
    path: Path
    pid: int | None
    started: bool = False

    def transport(self) -> SocketTransport:
        return SocketTransport(self.sock, log_path(self.path), self.pid)


def try_connect(path: Path, timeout: float = 5.0) -> Connection | None:
    """A connection to the daemon at ``path``, or None when none serves there.

    A missing file, or a stale one (ECONNREFUSED: its daemon is dead), is "none".
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise WorkerStartError(f"cannot connect to the daemon at {path}: {exc}") from exc
    sock.settimeout(None)
    pid, uid = _peer(sock)
    if uid is not None and uid != os.getuid():
        sock.close()
        raise WorkerStartError(f"the daemon socket {path} is served by uid {uid}, not by this "
                               f"user ({os.getuid()}); refusing to use it")
    return Connection(sock, path, pid)


def _peer(sock: socket.socket) -> tuple[int | None, int | None]:
    """The peer's (pid, uid) from SO_PEERCRED (Linux), or (None, None) where there is none."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None, None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


# -- starting --------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonOptions:
    """How to start a daemon when none serves. A running daemon keeps the options it has."""

    python: str | None = None
    idle_timeout: float | None = None
    threads: int | None = None
    store: str | None = None
    worker_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    start_timeout: float = 120.0
    auto_setup: bool | None = None

    def __post_init__(self) -> None:
        """Paths are made absolute now, against the caller's directory: the daemon runs
        from ``/`` (``_isolated``), and may be started later than these options are made."""
        if self.store is not None:
            object.__setattr__(self, "store", os.path.abspath(self.store))
        object.__setattr__(self, "worker_args", absolute_args(self.worker_args))

    def argv(self, python: str, path: Path) -> list[str]:
        argv = python_argv(python, "-m", "scm_worker", "--listen", os.path.abspath(path))
        if self.idle_timeout is not None:
            argv += ["--idle-timeout", f"{self.idle_timeout:g}"]
        if self.threads is not None:
            argv += ["--threads", str(self.threads)]
        if self.store is not None:
            argv += ["--store", str(self.store)]
        return argv + list(self.worker_args)


#: daemons this process started, by pid: polled so that they do not linger as zombies
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def start(options: DaemonOptions | None = None, path: Path | None = None) -> Connection:
    """A connection to the user's daemon, starting one when none serves. Idempotent.

    ``Connection.started`` tells whether this call's process is the one that serves.
    """
    options = options or DaemonOptions()
    deadline = time.monotonic() + options.start_timeout
    python = None
    if path is None:
        python = find_worker_python(options.python, auto_setup=options.auto_setup)
        path = runtime_dir() / socket_name(identify(python))
    found = try_connect(path)
    if found is not None:
        return found
    _say_others(path)
    ready = _spawn(options, path, deadline, python)
    connection = _connect_until(path, deadline)
    started = ready.get("listening") is not None and connection.pid == ready.get("pid")
    return Connection(connection.sock, path, connection.pid, started)


def _say_others(path: Path) -> None:
    """Daemons of other versions or environments are never used; say so when one runs."""
    ours = SOCKET_NAME.format(version=__version__, key="")
    for other in sorted(path.parent.glob(SOCKET_GLOB)):
        if other == path or (found := try_connect(other, timeout=1.0)) is None:
            continue
        found.sock.close()
        if other.name.startswith(ours.removesuffix(".sock")):
            log.info("a daemon of another worker environment (or of its source before an "
                     "edit) serves %s (pid %s); this one gets its own", other, found.pid)
        else:
            log.warning("a daemon of another scm-worker version serves %s (pid %s); this "
                        "client (%s) starts its own", other, found.pid, __version__)


def _spawn(options: DaemonOptions, path: Path, deadline: float,
           python: str | None = None) -> dict[str, Any]:
    """Run ``python -I -m scm_worker --listen PATH ...`` from ``/`` and read its ready line."""
    _reap_children()
    python = python or find_worker_python(options.python, auto_setup=options.auto_setup)
    argv = options.argv(python, path)
    log.info("starting a daemon: %s", " ".join(argv))
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **options.env},
                                cwd=CWD, start_new_session=True, close_fds=True)
    except OSError as exc:
        raise WorkerStartError(f"could not start {python}: {exc}") from exc
    stderr = _StderrTail(proc)
    line = _read_ready_line(proc, deadline)
    return _ready(proc, line, stderr)


def _read_ready_line(proc: subprocess.Popen[bytes], deadline: float) -> bytes | None:
    """The daemon's first stdout line (b"" at EOF), or None when it took past the deadline."""
    got: list[bytes] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True,
                              name=f"scm-daemon-ready-{proc.pid}")
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    return got[0] if got else None


def _ready(proc: subprocess.Popen[bytes], line: bytes | None,
           stderr: _StderrTail) -> dict[str, Any]:
    """What the ready line says: serving, already running, or why the daemon did not start."""
    if line is None:
        signal_pgid(proc.pid, signal.SIGKILL)
        proc.wait()
        raise WorkerStartError("the daemon did not report ready in time", stderr.text(2))
    try:
        ready = json.loads(line) if line.strip() else None
    except ValueError:
        ready = None
    if not isinstance(ready, dict) or not ready:
        code = _wait(proc, 5)
        raise WorkerStartError(f"the daemon exited (code {code}) before it was ready"
                               if code is not None else "the daemon wrote no ready line",
                               stderr.text(2) or f"its first line: {line[:200]!r}")
    if "error" in ready:
        _wait(proc, 5)
        raise WorkerStartError(f"the daemon could not start: {ready['error']}", stderr.text(2))
    if "listening" in ready:
        with _children_lock:
            _children[proc.pid] = proc
    else:  # already_running: this process exits 0 on its own
        _wait(proc, 5)
    return ready


class _StderrTail:
    """The starter's end of a daemon's stderr, drained until the daemon detaches it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._lines: list[str] = []
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._drain, daemon=True,
                                        name=f"scm-daemon-stderr-{proc.pid}")
        self._thread.start()

    def _drain(self) -> None:
        assert self._stream is not None
        try:
            for raw in self._stream:
                self._lines = [*self._lines[-READY_TAIL_LINES:],
                               raw.decode("utf-8", "replace").rstrip("\n")]
        except (OSError, ValueError):
            pass
        finally:
            self._stream.close()

    def text(self, timeout: float) -> str:
        self._thread.join(timeout)
        return "\n".join(self._lines)


def _connect_until(path: Path, deadline: float) -> Connection:
    """Connect, retrying while the daemon that won the lock may still be binding."""
    while True:
        found = try_connect(path)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise WorkerStartError(f"no daemon answered on {path} in time",
                                   read_log_tail(log_path(path), READY_TAIL_LINES))
        time.sleep(CONNECT_RETRY_S)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _reap_children() -> None:
    with _children_lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]


# -- status and stop -------------------------------------------------------------------


def ask(connection: Connection, method: str, timeout: float, params: Any = None) -> Any:
    """One request on a fresh connection, which is then closed."""
    channel = Channel(connection.transport())
    try:
        return channel.request(method, params)[1].result(timeout=timeout)
    finally:
        channel.disconnect(WorkerClosed("request finished"))


def status(path: Path | None = None, timeout: float = 10.0) -> dict[str, Any] | None:
    """The running daemon's ``status`` result, or None when no daemon runs."""
    connection = try_connect(path or socket_path())
    if connection is None:
        return None
    return dict(ask(connection, "status", timeout))


def stop(grace: float = 5.0, path: Path | None = None, force: bool = True) -> StopPath | None:
    """Stop the daemon: ``shutdown``, then SIGTERM, then SIGKILL of its process group.

    ``force``: stop the other connections' running and queued work too (without it the
    daemon refuses a shutdown while they have any, and SIGTERM follows after ``grace``).
    Returns the path taken, or None when no daemon ran. Waits for the pid to exit.
    """
    connection = try_connect(path or socket_path())
    if connection is None:
        return None
    return _stop(connection, grace, force)


def _stop(connection: Connection, grace: float, force: bool = True) -> StopPath:
    pid = connection.pid
    try:
        ask(connection, "shutdown", grace, {"force": True} if force else None)
    except (WorkerError, FutureTimeout) as exc:
        log.warning("the daemon did not answer shutdown: %s", exc)
    if pid is None:
        return "exited"
    ended = escalate(pid, lambda timeout: wait_gone(pid, timeout), True, grace)
    log.info("daemon %d stopped: %s", pid, ended)
    return ended


@dataclass(frozen=True)
class Running:
    """A daemon found serving in the runtime directory, and its ``status`` result."""

    path: Path
    status: dict[str, Any]


def running(timeout: float = 10.0) -> list[Running]:
    """Every daemon that answers in the runtime directory: any version, any environment."""
    found = []
    for path in sockets():
        try:
            answer = status(path, timeout)
        except (WorkerError, FutureTimeout) as exc:
            log.warning("the daemon at %s did not answer status: %s", path, exc)
            continue
        if answer is not None:
            found.append(Running(path, answer))
    return found


def stop_all(grace: float = 5.0) -> list[tuple[Path, int | None, StopPath]]:
    """Stop every daemon of the runtime directory; (socket, pid, path taken) of each."""
    stopped = []
    for path in sockets():
        connection = try_connect(path)
        if connection is not None:
            stopped.append((path, connection.pid, _stop(connection, grace)))
    return stopped


def pid_gone(pid: int) -> bool:
    """True once every thread of ``pid`` has exited (a zombie counts: it no longer runs).

    The leader alone is not enough: when a multi-threaded process is killed, its leader
    shows ``Z`` while its other threads are still exiting, and until the last of them
    has, the process's files stay open. A daemon's socket then still accepts a connection
    that nobody will answer: measured, 10 connects in 10 right after a killed daemon's
    leader turned ``Z``.
    """
    with _children_lock:
        proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is not None  # the kernel reports a leader only after its threads
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    except OSError:
        return _signal_says_gone(pid)
    return all(_thread_ended(pid, thread) for thread in threads)


def _thread_ended(pid: int, thread: str) -> bool:
    """A thread that is gone, a zombie (``Z``) or dead (``X``) holds nothing any more."""
    try:
        with open(f"/proc/{pid}/task/{thread}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):  # reaped while we looked
        return True


def _signal_says_gone(pid: int) -> bool:
    """Where /proc cannot be read: signal 0 tells whether the pid exists at all."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pid_gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
