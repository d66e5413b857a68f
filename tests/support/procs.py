"""Processes from /proc, and waiting for a condition: for tests of what outlives what.

/proc/PID/stat is read by the worker's own ``scm_worker.server.procfs`` (standard library
only: every test environment installs the project, so every one imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from scm_client import _daemon
from scm_worker.server.procfs import process_stats, stat_fields


def pid_alive(pid: int) -> bool:
    """True while any thread of ``pid`` runs: the client's own rule (a killed process's
    leader is a zombie while its other threads still exit)."""
    return not _daemon.pid_gone(pid)


def group_members(pgid: int) -> list[int]:
    """Pids of every live process in process group ``pgid`` (orphans included: no parent needed)."""
    return sorted(pid for pid, fields in process_stats() if int(fields[2]) == pgid and fields[0] != "Z")


def describe(pid: int) -> str:
    """What a live process is and is doing: state, parent, threads, kernel wait, command line."""
    fields = stat_fields(pid)
    if fields is None:
        return f"pid {pid} (gone)"
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip() or "-"
    except OSError:
        wchan = "?"
    return (f"pid {pid} state {fields[0]} parent {fields[1]} threads {fields[17]} waiting in {wchan}: "
            f"{cmdline(pid)[:160]}")


def descendants(root: int) -> list[int]:
    """Pids of every live process below ``root`` (from /proc ppid links)."""
    children: dict[int, list[int]] = {}
    for pid, fields in process_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
