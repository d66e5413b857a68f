"""Exit when nobody can read the replies any more: a client killed in the middle of a request.

The serve loop notices a client that went away only when it next reads stdin (EOF) or
writes a reply (EPIPE); during a long fit that can be minutes of CPU spent for nobody,
with joblib's processes busy too. When the client dies, the read end of the worker's
protocol stdout closes, and ``poll`` reports POLLERR on the write end at once, without
reading or writing anything. So a daemon thread sleeps in ``poll`` on that fd (no
timeout, no busy loop) and, when it wakes with an error, kills joblib's processes and
the worker itself.

Closing stdin is not a reason to stop: a caller may pipe requests in and close its end
(``cat requests.jsonl | python -m scm_worker``), and still reads every reply.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading

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
    """SIGKILL joblib's workers, then this process (and its group, when it leads one)."""
    for pid in loky_worker_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(EXIT_CLIENT_GONE)


def loky_worker_pids() -> list[int]:
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None) if loky else None
    processes = getattr(executor, "_processes", None) or {}
    return [int(pid) for pid in list(processes)]
