"""Spawning and stopping the worker process: its own process group, escalation on stop.

The worker leads a new process group so that joblib's loky children, which it spawns,
can be signalled with it; stopping always ends with the whole group gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Literal

log = logging.getLogger(__name__)

StopPath = Literal["exited", "terminated", "killed", "already_dead"]


def spawn(argv: Sequence[str], env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
    merged = {**os.environ, **(env or {})}
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=merged,
        start_new_session=True,
        bufsize=-1,
        close_fds=True,
    )


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the worker's whole process group (children included); ignore if gone."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def stop(proc: subprocess.Popen[bytes], asked_to_exit: bool, grace: float) -> StopPath:
    """Wait for a requested exit, then SIGTERM, then SIGKILL; return the path taken.

    Whatever the path, the process group is SIGKILLed at the end so no child survives.
    """
    if proc.poll() is not None and not asked_to_exit:
        path: StopPath = "already_dead"
    elif asked_to_exit and wait_exit(proc, grace):
        path = "exited"
    else:
        signal_group(proc, signal.SIGTERM)
        if wait_exit(proc, grace):
            path = "terminated"
        else:
            signal_group(proc, signal.SIGKILL)
            proc.wait()
            path = "killed"
    signal_group(proc, signal.SIGKILL)
    log.debug("worker %d stopped: %s (exit code %s)", proc.pid, path, proc.returncode)
    return path


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Immediate stop (timeouts, protocol corruption): SIGKILL the group and reap."""
    signal_group(proc, signal.SIGKILL)
    proc.wait()

