"""One client connection: where its replies go, what it reads, who is on the other end.

stdio is one session for the worker's life; a daemon has one per accepted socket.
What a client says about itself in ``initialize`` (the column encodings it reads)
belongs to its session, never to the worker: two clients of one daemon may differ.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from . import jsonio
from .columns import ResultEncoding

log = logging.getLogger(__name__)

#: what the end of a session's input means for its unfinished requests: stdio finishes
#: them (``cat requests.jsonl | python -m scm_worker`` reads every reply), a socket that
#: closed has nobody to read them, so they are cancelled
AtEnd = Literal["finish", "cancel"]

_ids = itertools.count(1)


#: what goes out as one piece: a line, or a ``$/attached`` notice and the parts it counts
#: (written one after another, so the bytes are never copied into one buffer)
Payload = bytes | tuple[bytes | memoryview, ...]
#: announces a request's attached parts; their bytes follow it, its reply comes later
ATTACHED_METHOD = "$/attached"


class Writer(Protocol):
    def write(self, payload: Payload) -> None: ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...


@dataclass(eq=False)
class Session:
    writer: Writer
    label: str
    at_end: AtEnd = "finish"
    #: how its results' numeric sample columns travel (what it said it reads)
    result_columns: ResultEncoding = "json"
    id: int = field(default_factory=lambda: next(_ids))
    closed: threading.Event = field(default_factory=threading.Event)

    def send(self, line: Payload) -> None:
        """Write one encoded line (or a notice and its parts); a peer that went away closes
        the session, never the worker."""
        if self.closed.is_set():
            return
        try:
            self.writer.write(line)
        except OSError as exc:
            log.info("session %s: peer gone (%s)", self.label, exc)
            self.closed.set()

    def send_attached(self, request_id: Any, parts: list[memoryview]) -> threading.Thread:
        """Start writing a request's attached parts (float64 columns), behind the
        ``$/attached`` notice that lists them, and return the thread that writes.

        The request goes on while they are written (a write waits for the client to read,
        and lets go of the GIL), so the statistics of a sample cost no time on top of
        its bytes' journey. Join the thread before the reply is sent: the parts arrive
        first, and the client holds them by ``request_id`` until it comes.
        """
        notice = {"jsonrpc": "2.0", "method": ATTACHED_METHOD, "params": {
            "id": request_id, "parts": [{"dtype": "float64", "bytes": p.nbytes} for p in parts]}}
        payload = (jsonio.dumps_line(notice), *parts)
        writer = threading.Thread(target=self.send, args=(payload,), daemon=True,
                                  name=f"scm-attached-{self.id}")
        writer.start()
        return writer

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.closed.is_set():
            return
        try:
            self.writer.notify(method, params)
        except OSError as exc:
            log.info("session %s: peer gone (%s)", self.label, exc)
            self.closed.set()
