"""The machine as /proc sees it: a process tree's memory, how busy the CPU is, who else uses it."""

from __future__ import annotations

import os
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (joblib's loky processes, its resource tracker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (peak) of the process alone and summed with its descendants, in MB."""

    def status(p: int) -> dict[str, float]:
        values = {"VmRSS": 0.0, "VmHWM": 0.0}
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0]) / 1024
        except OSError:
            pass
        return values

    own = status(pid)
    kids = [status(p) for p in descendants(pid)]
    return {
        "rss": own["VmRSS"],
        "peak": own["VmHWM"],
        "rss_total": own["VmRSS"] + sum(k["VmRSS"] for k in kids),
        "peak_total": own["VmHWM"] + sum(k["VmHWM"] for k in kids),
        "children": len(kids),
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all cores from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(interval: float = 1.0) -> float | None:
    """Fraction of all cores busy over ``interval`` (between cases: other jobs' use)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(interval)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)


def _own_jiffies() -> int:
    """CPU time of this process and every process it started (live or reaped), in jiffies."""
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    total = round((own.user + own.system + own.children_user + own.children_system) * tick)
    for pid in descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total


def cpu_snapshot() -> tuple[int, int, int] | None:
    """(all busy, all total, ours) jiffies: the difference of two is what others used."""
    try:
        busy, total = _cpu_times()
        return busy, total, _own_jiffies()
    except (OSError, ValueError, IndexError):
        return None


def others_share(
    start: tuple[int, int, int] | None, end: tuple[int, int, int] | None
) -> float | None:
    """Fraction of all cores that processes outside this benchmark kept busy in between."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    others = (end[0] - start[0]) - (end[2] - start[2])
    return max(0.0, others / (end[1] - start[1]))
