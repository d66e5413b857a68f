"""Restart policy: how many restarts in a row before giving up. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartPolicy:
    """Allow up to ``max_restarts`` restarts without a successful reply in between."""

    max_restarts: int = 3
    restarts_in_a_row: int = 0

    def may_restart(self) -> bool:
        return self.restarts_in_a_row < self.max_restarts

    def record_restart(self) -> None:
        self.restarts_in_a_row += 1

    def record_success(self) -> None:
        """A reply arrived: the worker is healthy again, the count starts over."""
        self.restarts_in_a_row = 0
