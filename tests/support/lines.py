"""The lines a reader thread received from a worker (pipes or a socket), and their end.

``support.pipes.WorkerPipes`` and ``support.daemon.SocketPeer`` each pump a stream into
one of these. The end stays the end: once the stream closed, every later read sees it
again, so a test that reads past the last line fails the same way each time.
"""

from __future__ import annotations

import queue
from typing import Any

_END = object()


class LineQueue:
    """Lines in arrival order, then (once the stream closes) the end, for good."""

    def __init__(self) -> None:
        self._items: queue.Queue[Any] = queue.Queue()

    def put(self, line: bytes) -> None:
        self._items.put(line)

    def end(self) -> None:
        self._items.put(_END)

    def next(self, timeout: float) -> bytes | None:
        """The next line, or None at the end; raises ``queue.Empty`` after ``timeout``."""
        item = self._items.get(timeout=timeout)
        if item is _END:
            self._items.put(_END)
            return None
        assert isinstance(item, bytes)
        return item

    def pending(self) -> list[bytes]:
        """The lines already received and not read (the end stays)."""
        found = []
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                return found
            if item is _END:
                self._items.put(_END)
                return found
            found.append(item)
