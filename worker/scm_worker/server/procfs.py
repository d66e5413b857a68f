"""What /proc says of processes: the fields of /proc/PID/stat, one process or all.

The one reading of that file for the worker (the lifeline finds its children, the
daemon's lock proves a dead holder's orphans) and for the test suites (support.procs),
which import it from here: standard library only, so every test environment can.
"""

from __future__ import annotations

import os
from collections.abc import Iterator


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, None if the process is gone:
    [0] state, [1] ppid, [2] pgid, [17] threads, [19] start time (clock ticks since boot).

    The command name is in parentheses and may itself hold spaces and ')': the fields
    start after the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, ``stat_fields``) of every process in /proc still there when read."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            yield int(entry), fields
