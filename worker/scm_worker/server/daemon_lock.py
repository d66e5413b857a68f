"""The daemon's lock file: one daemon per socket path, and a record of who holds it.

The lock (``flock`` on PATH.lock, held for the daemon's life and released by the kernel
however it dies) makes exactly one daemon serve a path. The file's content is the
holder's record, one JSON line: its pid, its start time (field 22 of /proc/PID/stat,
clock ticks since boot), its command line and a random token it puts in its own
environment before it starts any process. A losing starter reads the pid to announce;
a clean exit empties the record; a record found by the next holder is that of a daemon
that died without cleaning up, whose orphaned joblib processes are reaped, but only on
proof (``reap_orphans``): the pid alone names whatever process has it now.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procfs import process_stats, stat_fields

log = logging.getLogger(__name__)

#: carried by every process the daemon starts (joblib's loky workers copy the environment)
TOKEN_ENV = "SCM_WORKER_DAEMON_TOKEN"
#: how long a losing starter waits for the lock's holder to write its record, seconds
HOLDER_PID_WAIT = 1.0
#: a record is one short line; anything longer is not one
RECORD_MAX_BYTES = 64 * 1024


class AlreadyRunning(Exception):
    """Another daemon holds the lock of this socket path."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock: enough to tell that process from any later one at its pid."""

    pid: int
    start: int
    cmdline: tuple[str, ...]
    token: str

    @classmethod
    def this_process(cls) -> Holder:
        """This daemon's record; its token goes into its environment, so its children inherit it."""
        token = secrets.token_hex(16)
        os.environ[TOKEN_ENV] = token
        pid = os.getpid()
        return cls(pid, process_start(pid) or 0, tuple(process_cmdline(pid)), token)

    def encode(self) -> bytes:
        record = {"pid": self.pid, "start": self.start, "cmdline": list(self.cmdline),
                  "token": self.token}
        return json.dumps(record).encode() + b"\n"

    @classmethod
    def decode(cls, raw: bytes) -> Holder | None:
        """The record, or None for anything else (an older worker's bare pid proves nothing)."""
        try:
            record: Any = json.loads(raw)
            holder = cls(record["pid"], record["start"], tuple(record["cmdline"]), record["token"])
        except (ValueError, TypeError, KeyError):
            return None
        fields = (holder.pid, holder.start, holder.token)
        if not all(isinstance(f, t) for f, t in zip(fields, (int, int, str), strict=True)):
            return None
        return holder if len(holder.token) >= 32 and holder.pid > 0 else None


def lock_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".lock")


def take_lock(socket_path: Path) -> tuple[int, Holder | None]:
    """Hold the path's lock (the fd stays open for the daemon's life) and record ourselves.

    Returns the fd and the record a previous holder left (a daemon that died without
    cleaning up: it no longer holds the lock), for ``reap_orphans`` once the log is open.
    """
    fd = os.open(lock_path(socket_path), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holders_pid(fd)
        os.close(fd)
        raise AlreadyRunning(holder) from None
    previous = Holder.decode(_read(fd))
    _write(fd, Holder.this_process().encode())  # first, so a losing starter reads our pid
    return fd, previous


def clear_record(fd: int) -> None:
    """Empty the record on a clean exit: nothing is left for a successor to reap."""
    try:
        os.ftruncate(fd, 0)
    except OSError as exc:
        log.warning("could not clear the lock's record: %s", exc)


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, RECORD_MAX_BYTES)


def _write(fd: int, record: bytes) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, record)


def _holders_pid(fd: int) -> int | None:
    """The pid the holder recorded; it writes it just after taking the lock, so an empty
    or partial record is read again for a moment (None if it stays unreadable)."""
    deadline = time.monotonic() + HOLDER_PID_WAIT
    while (pid := _recorded_pid(_read(fd))) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def _recorded_pid(raw: bytes) -> int | None:
    holder = Holder.decode(raw)
    if holder is not None:
        return holder.pid
    text = raw.decode(errors="replace").strip()
    return int(text) if text.isdigit() else None  # an older worker's record


# -- what /proc says ---------------------------------------------------------------------------


def process_start(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def process_cmdline(pid: int) -> list[str]:
    """The process's argv (empty for a zombie, or when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [os.fsdecode(arg) for arg in raw.split(b"\0")[:-1]]


def _carries_token(pid: int, token: str) -> bool:
    """True when the process was started with ``TOKEN_ENV=token`` in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
    except OSError:
        return False
    return f"{TOKEN_ENV}={token}".encode() in environ


# -- reaping -----------------------------------------------------------------------------------


def reap_orphans(dead: Holder) -> list[int]:
    """SIGKILL what a killed daemon left: processes proven to be its children, owned by us.

    The proof, every part of it required:

    1. the daemon is dead: its pid is gone, or is a zombie with the recorded start time.
       A live process at that pid with another start time (or, the same start time read
       after a reboot, another command line) is not the daemon: the pid was recycled,
       and the group of that pid is someone else's, so nothing is signalled; nor when the
       recorded daemon itself still runs (its lock file was replaced under it);
    2. each process signalled is ours (uid), in the dead daemon's process group (a
       daemon leads its own), started no earlier than the daemon (start times are clock
       ticks, so a child may share the daemon's tick, never precede it), and carries the
       daemon's random token in the environment it was started with. The group and the
       start time alone are not enough once the leader is gone: the kernel does not reuse
       a pid while a group of that number lives, but after the daemon's group emptied,
       a new process at that pid may have led a group whose members outlived it (a
       shell's background job). Only the daemon's descendants were started with its token.
    """
    if not _holder_is_dead(dead):
        return []
    reaped = [pid for pid in _group_of(dead.pid) if _started_by(dead, pid) and _kill(pid)]
    if reaped:
        log.info("reaped %d process(es) a killed daemon (pid %d) left: %s",
                 len(reaped), dead.pid, reaped)
    return reaped


def _holder_is_dead(dead: Holder) -> bool:
    fields = stat_fields(dead.pid)
    if fields is None:
        return True
    cmdline = process_cmdline(dead.pid)
    if int(fields[19]) != dead.start or (cmdline and tuple(cmdline) != dead.cmdline):
        log.info("the lock's previous holder (pid %d) is gone and its pid now names another "
                 "process (%s): nothing reaped", dead.pid, " ".join(cmdline)[:200] or "?")
        return False
    if fields[0] in ("Z", "X"):
        return True
    log.warning("the lock's previous holder (pid %d) still runs without its lock: nothing reaped",
                dead.pid)
    return False


def _group_of(pgid: int) -> list[int]:
    return [pid for pid, fields in process_stats() if pid != os.getpid() and int(fields[2]) == pgid]


def _started_by(dead: Holder, pid: int) -> bool:
    fields = stat_fields(pid)
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return False
    return (fields is not None and owner == os.getuid() and int(fields[2]) == dead.pid
            and int(fields[19]) >= dead.start and _carries_token(pid, dead.token))


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return False
    return True
