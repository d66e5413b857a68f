"""Exit when nobody can read the replies any more: a client killed in the middle of a request.

The serve loop notices a client that went away only when it next reads stdin (EOF) or
writes a reply (EPIPE); during a long fit that can be minutes of CPU spent for nobody,
with joblib's processes busy too. When the client dies, the read end of the worker's
protocol stdout closes, and ``poll`` reports POLLERR on the write end at once, without
reading or writing anything. So a daemon thread sleeps in ``poll`` on that fd (no
timeout, no busy loop) and, when it wakes with an error, kills joblib's processes and
the worker itself.

The worker's children (joblib's loky processes and loky's resource tracker) are found in
/proc, by their parent pid: loky keeps its list of processes in private names.

Closing stdin is not a reason to stop: a caller may pipe requests in and close its end
(``cat requests.jsonl | python -m scm_worker``), and still reads every reply.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time

from .procfs import process_stats, stat_fields

log = logging.getLogger(__name__)

EXIT_CLIENT_GONE = 3


def watch(protocol_out_fd: int) -> threading.Thread:
    """Start the watcher on the worker's protocol stdout."""
    thread = threading.Thread(
        target=_watch, args=(protocol_out_fd,), name="scm-lifeline", daemon=True
    )
    thread.start()
    return thread


def _watch(fd: int) -> None:
    if reader_gone(fd):
        log.warning(
            "the client closed the worker's stdout (it died?): "
            "stopping joblib's processes and exiting"
        )
        abandon()


def reader_gone(fd: int) -> bool:
    """Block until the pipe's reader is gone (True) or the fd is no longer valid (False)."""
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: POLLERR, POLLHUP and POLLNVAL are always reported
    while True:
        for _, events in poller.poll():
            if events & select.POLLNVAL:
                return False
            if events & (select.POLLERR | select.POLLHUP):
                return True


def abandon() -> None:
    """SIGKILL this process's children (joblib's workers), then this process (and its group,
    when it leads one)."""
    for pid in child_pids():
        _signal(pid, signal.SIGKILL)
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(EXIT_CLIENT_GONE)


#: how long ``stop_children`` waits for the children it stopped before it kills them
STOP_WAIT_S = 5.0


def stop_children() -> list[int]:
    """SIGTERM this process's children that take it (joblib's loky workers) and wait until
    they are gone; SIGKILL any still there after ``STOP_WAIT_S``. Children that ignore
    SIGTERM (loky's resource tracker) are left alone: they exit on their own once this
    process has, after cleaning up what joblib's workers left. Returns the pids stopped."""
    stopped = [pid for pid in child_pids() if not ignores_sigterm(pid)]
    for pid in stopped:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while any(running(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.01)  # poll: children of this process, but loky's threads reap them
    for pid in stopped:
        if running(pid):
            _signal(pid, signal.SIGKILL)
    return stopped


def child_pids(parent: int | None = None) -> list[int]:
    """The pids of ``parent``'s (default: this process's) live children, from /proc."""
    parent = os.getpid() if parent is None else parent
    return [pid for pid, fields in process_stats() if int(fields[1]) == parent and fields[0] != "Z"]


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def ignores_sigterm(pid: int) -> bool:
    """Whether ``pid`` ignores SIGTERM (/proc/PID/status, ``SigIgn``); False if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            ignored = next((line.split()[1] for line in f if line.startswith("SigIgn:")), "0")
    except OSError:
        return False
    return bool(int(ignored, 16) & (1 << (signal.SIGTERM - 1)))


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass
