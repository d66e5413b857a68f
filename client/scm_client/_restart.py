"""Restart and retry policy: restarts in a row before giving up, resends after a crash. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartPolicy:
    """Allow up to ``max_restarts`` restarts without a successful reply in between, and
    send a call that met a crash again up to ``crash_retries`` times (each one a restart)."""

    max_restarts: int = 3
    crash_retries: int = 0
    restarts_in_a_row: int = 0

    def may_restart(self) -> bool:
        return self.restarts_in_a_row < self.max_restarts

    def may_resend(self, attempts: int) -> bool:
        """Whether a call that crashed on its ``attempts``-th sending goes out again."""
        return attempts <= self.crash_retries

    def record_restart(self) -> None:
        self.restarts_in_a_row += 1

    def record_success(self) -> None:
        """A reply arrived: the worker is healthy again, the count starts over."""
        self.restarts_in_a_row = 0
