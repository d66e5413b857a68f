"""The user's daemon: where its socket lives, starting it (idempotently), its status, stopping it.

One daemon per user and scm-worker version: the version is in the socket's name, so a
daemon of another version is never connected to (and the handshake checks it again).
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

from ._channel import Channel
from ._locate import find_worker_python
from ._process import Escalation, escalate, signal_pgid
from ._transport import SocketTransport, read_log_tail
from ._version import __version__
from .errors import WorkerClosed, WorkerError, WorkerStartError

log = logging.getLogger("scm_client.daemon")

DIR_ENV: Final = "SCM_DAEMON_DIR"
SWITCH_ENV: Final = "SCM_DAEMON"
#: a Unix socket path is at most 107 bytes (sun_path is 108, with its NUL)
SUN_PATH_MAX: Final = 107
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


def socket_name() -> str:
    return f"daemon-{__version__}.sock"


def runtime_dir() -> Path:
    """The per-user directory of the socket, created mode 0700.

    ``$SCM_DAEMON_DIR`` if set (tests point it at a temporary directory), else
    ``$XDG_RUNTIME_DIR/scm-worker/``, else ``<XDG_CACHE_HOME or ~/.cache>/scm-worker/run/``.
    A Unix socket path is limited to 107 bytes: when the socket's path there would be
    longer, the directory is ``/tmp/scm-worker-<uid>/`` instead (also 0700, also ours).
    A directory owned by another user, or open to others and not ours to chmod, is refused.
    """
    preferred = _preferred_dir()
    if len(os.fsencode(preferred / socket_name())) > SUN_PATH_MAX:
        log.debug("%s is too long for a Unix socket path; using /tmp", preferred)
        preferred = Path(f"/tmp/scm-worker-{os.getuid()}")
    return _private_dir(preferred)


def _preferred_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "scm-worker"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "scm-worker" / "run"


def _private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter, or WorkerStartError saying why not."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise WorkerStartError(f"cannot create the daemon directory {path}: {exc}") from exc
    if not path.is_dir() or path.is_symlink():
        raise WorkerStartError(f"the daemon directory {path} is not a directory")
    if info.st_uid != os.getuid():
        raise WorkerStartError(f"the daemon directory {path} belongs to uid {info.st_uid}, "
                               f"not to this user ({os.getuid()}): set {DIR_ENV} to a "
                               f"directory of yours")
    if info.st_mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as exc:
            raise WorkerStartError(f"the daemon directory {path} is open to other users "
                                   f"(mode {info.st_mode & 0o777:o}) and cannot be made 0700: "
                                   f"{exc}") from exc
    return path


def socket_path() -> Path:
    """``runtime_dir() / daemon-<version>.sock``: a daemon of another version is never used."""
    return runtime_dir() / socket_name()


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

    def argv(self, python: str, path: Path) -> list[str]:
        argv = [python, "-m", "scm_worker", "--listen", str(path)]
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
    path = path or socket_path()
    deadline = time.monotonic() + options.start_timeout
    found = try_connect(path)
    if found is not None:
        return found
    _say_other_versions(path)
    ready = _spawn(options, path, deadline)
    connection = _connect_until(path, deadline)
    started = ready.get("listening") is not None and connection.pid == ready.get("pid")
    return Connection(connection.sock, path, connection.pid, started)


def _say_other_versions(path: Path) -> None:
    """Daemons of other scm-worker versions are never used; say so when one is running."""
    for other in sorted(path.parent.glob("daemon-*.sock")):
        if other != path and (found := try_connect(other, timeout=1.0)) is not None:
            found.sock.close()
            log.warning("a daemon of another scm-worker version serves %s (pid %s); this "
                        "client (%s) starts its own", other, found.pid, __version__)


def _spawn(options: DaemonOptions, path: Path, deadline: float) -> dict[str, Any]:
    """Run ``python -m scm_worker --listen PATH ...`` and read its one ready line."""
    _reap_children()
    python = find_worker_python(options.python, auto_setup=options.auto_setup)
    argv = options.argv(python, path)
    log.info("starting a daemon: %s", " ".join(argv))
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **options.env},
                                start_new_session=True, close_fds=True)
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
