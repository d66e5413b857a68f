"""Spawning and stopping the worker process: its own process group, escalation on stop.

The worker leads a new process group so that joblib's loky children, which it spawns,
can be signalled with it; stopping always ends with the whole group gone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from ._isolated import CWD

log = logging.getLogger(__name__)

#: how an escalating stop ended
Escalation = Literal["exited", "terminated", "killed"]
StopPath = Escalation | Literal["already_dead"]


#: the size asked of the protocol's pipes: Linux's default (64 KiB) makes the two
#: processes take turns every 64 KiB; a 153 MB reply read in 0.15 s instead of 0.34 s
PIPE_BYTES = 1 << 20


def spawn(argv: Sequence[str], env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
    """Start the worker from ``CWD`` (``_isolated``), never from the caller's directory."""
    merged = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=merged,
        cwd=CWD,
        start_new_session=True,
        bufsize=-1,
        close_fds=True,
    )
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            widen_pipe(stream.fileno())
    return proc


def widen_pipe(fd: int, size: int = PIPE_BYTES) -> None:
    """Ask for a bigger pipe buffer where the system has the knob (Linux); a refusal
    (over ``/proc/sys/fs/pipe-max-size``, or the user's pipe quota) keeps the default."""
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setter is None:
        return
    try:
        fcntl.fcntl(fd, setter, size)
    except OSError as exc:
        log.debug("pipe buffer stays at the default: %s", exc)


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the worker's whole process group (children included); ignore if gone."""
    signal_pgid(proc.pid, sig)


def signal_pgid(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group led by ``pgid``; ignore it when gone or not ours."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


#: how often ``exit_code_clearing_group`` looks whether the worker has exited
POLL_S = 0.01


def exit_code_clearing_group(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The worker's exit code once it exits (None if it runs past ``timeout``), with what
    is left of its process group killed first.

    A worker killed with SIGKILL leaves its joblib children orphaned in its group, holding
    memory and its stderr pipe, until someone kills that group. Its stdout closing is the
    moment to: the group is signalled while the worker is an exited but unreaped child, so
    its pid, the group's id, cannot yet belong to anyone else's process.
    """
    deadline = time.monotonic() + timeout
    while proc.returncode is None:
        try:
            exited = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped meanwhile (Popen, in another thread)
            break
        if exited is not None:
            signal_group(proc, signal.SIGKILL)
            break
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)
    return proc.wait()


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def stop(proc: subprocess.Popen[bytes], asked_to_exit: bool, grace: float) -> StopPath:
    """``escalate`` for a worker we spawned (and reap it); "already_dead" if it was."""
    if proc.poll() is not None and not asked_to_exit:
        signal_group(proc, signal.SIGKILL)
        path: StopPath = "already_dead"
    else:
        path = escalate(proc.pid, lambda timeout: wait_exit(proc, timeout), asked_to_exit, grace)
        proc.wait()
    log.debug("worker %d stopped: %s (exit code %s)", proc.pid, path, proc.returncode)
    return path


#: how long to wait for a process to vanish after SIGKILL, seconds
KILL_WAIT = 10.0


def escalate(pid: int, exited: Callable[[float], bool], asked_to_exit: bool,
             grace: float) -> Escalation:
    """Wait for a requested exit, then SIGTERM, then SIGKILL the group; the path taken.

    ``pid`` leads its process group (``start_new_session``), so the signals reach
    joblib's children too, and whatever the path the group is SIGKILLed at the end so no
    child survives. ``exited(timeout)`` waits for ``pid`` to be gone: ``Popen.wait`` for a
    child, polling for a daemon that is not.
    """
    path: Escalation
    if asked_to_exit and exited(grace):
        path = "exited"
    else:
        signal_pgid(pid, signal.SIGTERM)
        if exited(grace):
            path = "terminated"
        else:
            signal_pgid(pid, signal.SIGKILL)
            exited(KILL_WAIT)
            path = "killed"
    signal_pgid(pid, signal.SIGKILL)
    return path


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Immediate stop (timeouts, protocol corruption): SIGKILL the group and reap."""
    signal_group(proc, signal.SIGKILL)
    proc.wait()

