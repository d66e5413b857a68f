"""The private backend: a worker process of the caller's own, over its pipes.

``Worker()`` runs one: started from ``/`` in its own process group (_process.py), killed
with that group when a call it ignores the cancellation of times out, and stopped on
close by ``shutdown``, then SIGTERM, then SIGKILL. Nothing of it outlives its Worker.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from . import _process
from ._channel import Channel, Notification
from ._isolated import python_argv
from ._locate import find_worker_python
from .errors import WorkerCrashed, WorkerError, WorkerStartError

log = logging.getLogger("scm_client.worker")


class PrivateBackend:
    """Spawns ``python -I -m scm_worker *worker_args`` with ``env`` over the caller's.

    ``env`` is the Worker's own dict: a change to it applies to the next start.
    """

    starting = "starting the worker"

    def __init__(self, python: str | None, env: dict[str, str], worker_args: Sequence[str],
                 auto_setup: bool | None) -> None:
        self.python = python
        self.env = env
        self.worker_args = tuple(worker_args)
        self.auto_setup = auto_setup

    def open(self, on_notification: Notification) -> PrivateLink:
        python = find_worker_python(self.python, auto_setup=self.auto_setup)
        argv = python_argv(python, "-m", "scm_worker", *self.worker_args)
        try:
            proc = _process.spawn(argv, self.env)
        except OSError as exc:
            raise WorkerStartError(f"could not start {argv[0]}: {exc}") from exc
        return PrivateLink(Channel(proc, on_notification), proc, argv[0])


@dataclass
class PrivateLink:
    """A worker process we started, and the channel on its pipes."""

    channel: Channel
    proc: subprocess.Popen[bytes]
    where: str
    mismatch_fix: str | None = None

    def start_failure(self, reason: str, cause: BaseException) -> WorkerError:
        return WorkerStartError(f"worker handshake failed: {reason}", self.channel.stderr_tail())

    def reap(self) -> None:
        _process.kill(self.proc)
        self.channel.join()

    def settle(self) -> None:
        """``reap`` waited for the process already."""

    def begin_close(self) -> Stopping:
        return Stopping(self, _send_shutdown(self.channel))

    def abandon(self, why: str, limit: float | None) -> str:
        log.warning("%s after %ss; killing worker %d", why, limit, self.proc.pid)
        self.channel.fail_all(WorkerCrashed(f"the worker was killed because {why}"))
        _process.kill(self.proc)
        return "killed"


@dataclass(frozen=True)
class Stopping:
    """A private worker asked to shut down, not yet reaped."""

    link: PrivateLink
    shutdown: Future[Any] | None

    def finish(self, timeout: float) -> str:
        """Wait for the reply and the exit, escalate to SIGTERM and SIGKILL, reap."""
        asked = _replied(self.shutdown, timeout)
        path = _process.stop(self.link.proc, asked, timeout)
        self.link.channel.join()
        return path


def _send_shutdown(channel: Channel) -> Future[Any] | None:
    if not channel.alive:
        return None
    try:
        return channel.request("shutdown")[1]
    except WorkerError:
        return None


def _replied(shutdown: Future[Any] | None, timeout: float) -> bool:
    """Did the worker answer ``shutdown`` (so it is exiting on its own)?"""
    if shutdown is None:
        return False
    try:
        shutdown.result(timeout=timeout)
    except (WorkerError, FutureTimeout):
        return False
    return True
