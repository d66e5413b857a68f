"""OpenMP threads for a query's predictions: no more than the cores nothing else is running on.

A fitted HistGradientBoosting mechanism predicts tree by tree, one OpenMP parallel
region per tree, each ended by a barrier that waits for every thread. On an idle machine
two threads beat one; when another process keeps a core busy, the second thread waits
for the scheduler at every barrier, and a counterfactual sample of 500 rows went from
16 ms to 0.4-1 s on this 2-core machine (one thread: 40-50 ms). So each query looks, once,
at how many other tasks are runnable right now (``/proc/loadavg``'s running count, the
least of a few readings, so a task that is merely passing by does not count) and caps
OpenMP at the cores left, never below one. Where that count cannot be read (not Linux),
or nothing else runs, the libraries' own thread settings (``--threads``) stand.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

#: readings of the running count; the least is taken (each costs a few microseconds)
READINGS = 3
#: pause between readings, seconds
SPACING = 0.0002


@contextmanager
def free_cores_only() -> Iterator[None]:
    """Run the block with OpenMP capped at the cores other runnable tasks leave free."""
    cores = _cores()
    others = other_runnable()
    if others is None or others == 0 or cores <= 1:
        yield
        return
    threads = max(1, cores - others)
    log.debug("%d other runnable tasks on %d cores: OpenMP capped at %d", others, cores, threads)
    with _controller().limit(limits=threads, user_api="openmp"):
        yield


def other_runnable(readings: int = READINGS) -> int | None:
    """Runnable tasks besides the one reading, the least of ``readings``; None if unknown."""
    counts = []
    for i in range(readings):
        count = _running_count()
        if count is None:
            return None
        counts.append(count)
        if i + 1 < readings:
            time.sleep(SPACING)
    return max(0, min(counts) - 1)


def _running_count() -> int | None:
    """The 4th field of /proc/loadavg, ``running/total``: scheduling entities runnable now."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            return int(loadavg.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.cache
def _controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, built once (building it scans the
    process's libraries; limiting through it afterwards costs microseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
