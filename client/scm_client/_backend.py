"""What a Worker stands on: a Backend opens Links, each one started worker or connection.

As jupyter_client separates the provisioner, the manager and the client: a Backend is the
provisioner (it starts a private process, _private.py, or connects to the user's daemon,
_daemon_backend.py, and owns what lies under the channel); the Worker is the manager (the
handshake, restarts, timeouts and close: one policy, whichever backend it has); the
Channel is the client (lines and ids). This module only names what a Worker may ask of a
backend; the Worker never asks which one it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._channel import Channel, Notification
    from .errors import WorkerError


class Closing(Protocol):
    """A stop begun by ``Link.begin_close`` (``shutdown`` sent), not yet waited for."""

    def finish(self, timeout: float) -> str:
        """Wait for the exit (``timeout`` each step of the escalation), reap; how it ended."""
        ...


class Link(Protocol):
    """One started worker, or one connection to a daemon, and how to let it go."""

    channel: Channel
    #: the interpreter (private) or the socket (daemon): what a version mismatch names
    where: str
    #: what a WorkerVersionMismatch advises; None for its default (``scm setup``)
    mismatch_fix: str | None

    def start_failure(self, reason: str, cause: BaseException) -> WorkerError:
        """What a failed handshake raises (``cause``: the error or the timeout). A
        WorkerCrashed means "the peer died, start another next time", anything else that
        the start failed (and counts toward ``max_restarts``)."""
        ...

    def reap(self) -> None:
        """Let go of a dead or abandoned link now: kill and reap a private worker and its
        process group; close only the connection to a daemon, which serves others."""
        ...

    def settle(self) -> None:
        """Before a successor is opened: wait (bounded) for what died to be gone, so the
        next open reaches the successor and not the last moments of the dead."""
        ...

    def begin_close(self) -> Closing | str:
        """Start closing without waiting: a Closing to finish, or, when there is nothing to
        wait for, how the close ended (a daemon connection: ``"disconnected"``)."""
        ...

    def abandon(self, why: str, limit: float | None) -> str:
        """A call timed out and ignored its cancellation: fail the pending calls and stop
        the worker (``"killed"``) or drop the connection (``"disconnected"``)."""
        ...


class Backend(Protocol):
    """Opens Links: a fresh private process each time, or a connection to the daemon."""

    #: what the user is told while ``open`` runs ("starting the worker", …)
    starting: str

    def open(self, on_notification: Notification) -> Link:
        """A started worker or connected daemon, its channel reading (not yet handshaken).
        Raises WorkerStartError when it cannot."""
        ...
