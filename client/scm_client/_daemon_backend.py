"""The daemon backend: a connection to the user's daemon (started when none serves).

``Worker.connect()`` runs on one. The daemon is shared with every other client of the
user, so nothing here ever stops it: a timed-out call that ignores its cancellation drops
this connection, and close closes only the connection (``scm daemon stop`` stops the
daemon, _daemon.py). A daemon that dies under us is a crash: the next call waits for
it to be gone and connects to (or starts) its successor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from . import _daemon
from ._channel import Channel, Notification
from .errors import WorkerClosed, WorkerCrashed, WorkerError, WorkerStartError

log = logging.getLogger("scm_client.worker")

#: how long a call waits for a daemon that closed on it to exit before connecting again
DAEMON_EXIT_WAIT_S: Final = 5.0

#: a daemon of another version is never used: what to do about it
MISMATCH_FIX: Final = ("it is not used; run `scm daemon stop` (this socket's daemon) and retry, "
                       "or pass --no-daemon / set SCM_DAEMON=off")


class DaemonBackend:
    """Connects to the daemon of ``options.python``'s environment, starting it if need be."""

    starting = "connecting to the daemon"

    def __init__(self, options: _daemon.DaemonOptions) -> None:
        self.options = options

    def open(self, on_notification: Notification) -> DaemonLink:
        connection = _daemon.start(self.options)
        channel = Channel(connection.transport(), on_notification)
        return DaemonLink(channel, connection.pid, str(connection.path))


@dataclass
class DaemonLink:
    """One connection to a daemon (``pid`` from SO_PEERCRED) and the channel on its socket."""

    channel: Channel
    pid: int | None
    where: str
    mismatch_fix: str | None = MISMATCH_FIX

    def start_failure(self, reason: str, cause: BaseException) -> WorkerError:
        tail = self.channel.stderr_tail()
        if isinstance(cause, WorkerCrashed):  # killed under us: the next call starts another
            return WorkerCrashed(f"the daemon died during the handshake: {reason}", None, tail)
        return WorkerStartError(f"worker handshake failed: {reason}", tail)

    def reap(self) -> None:
        self.channel.disconnect(WorkerClosed("the connection to the daemon was closed"))

    def settle(self) -> None:
        """A daemon that closed on us is dying: wait (bounded) for it to be gone."""
        if self.channel.crashed and self.pid is not None:
            _daemon.wait_gone(self.pid, DAEMON_EXIT_WAIT_S)

    def begin_close(self) -> str:
        self.channel.disconnect(WorkerClosed("this Worker is closed"))
        return "disconnected"

    def abandon(self, why: str, limit: float | None) -> str:
        log.warning("%s after %ss and ignored its cancellation; dropping the connection "
                    "to daemon %s", why, limit, self.pid)
        self.channel.disconnect(WorkerCrashed(f"the connection to the daemon was dropped "
                                              f"because {why}"))
        return "disconnected"
