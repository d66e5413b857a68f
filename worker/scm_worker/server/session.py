"""One client connection: where its replies go, what it reads, who is on the other end.

stdio is one session for the worker's life; a daemon has one per accepted socket.
What a client says about itself in ``initialize`` (the column encodings it reads)
belongs to its session, never to the worker: two clients of one daemon may differ.

A daemon's session writes through its outbox: the compute thread hands a reply over and
goes on, a thread of the session's own writes it. A peer that stops reading therefore
holds only its own writer; once more than ``max_outbox_bytes`` of replies wait behind the
one being written, the session is dropped (its work cancelled, its connection shut down).
stdio writes directly: its one client has nobody to be starved by it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .. import jsonio
from ..columns import ResultEncoding

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


#: what a full queue means to a session: its request is refused (-32004), or, on stdio,
#: the reader waits for room (``cat requests.jsonl | python -m scm_worker`` is never refused)
WhenFull = Literal["refuse", "wait"]
#: until ``connection.read_session`` sets the worker's ``max_outbox_bytes``
DEFAULT_OUTBOX_BYTES = 256 * 1024 * 1024


class Writer(Protocol):
    def write(self, payload: Payload) -> None: ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...


class Sending(Protocol):
    """What ``send_attached`` returns: ``join`` before the reply is sent."""

    def join(self, timeout: float | None = None) -> None: ...


class _Queued:
    """Parts handed to an outbox: its FIFO already puts them before the reply."""

    def join(self, timeout: float | None = None) -> None:
        return None


@dataclass(eq=False)
class Session:
    writer: Writer
    label: str
    at_end: AtEnd = "finish"
    #: how its results' numeric sample columns travel (what it said it reads)
    result_columns: ResultEncoding = "json"
    id: int = field(default_factory=lambda: next(_ids))
    closed: threading.Event = field(default_factory=threading.Event)
    #: write through an outbox and its own thread (a daemon's sessions) or directly (stdio)
    buffered: bool = True
    when_full: WhenFull = "refuse"
    max_outbox_bytes: int = DEFAULT_OUTBOX_BYTES
    #: told when the session is dropped for not reading (the scheduler cancels its work)
    on_drop: Callable[[Session], None] | None = None
    _outbox: Outbox | None = field(default=None, repr=False)
    _outbox_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, line: Payload) -> None:
        """Write one encoded line (or a notice and its parts); a peer that went away closes
        the session, never the worker. Buffered: hand it to the outbox and return."""
        if self.closed.is_set():
            return
        if self.buffered:
            if not self.outbox().put(line):
                self.drop()
            return
        self.write_now(line)

    def write_at_once(self, line: bytes) -> Payload | None:
        """Write what the peer takes of ``line`` now, never waiting; the rest, or None.

        The outbox's fast path: an idle outbox hands a reply straight to the socket, and
        its writer thread (a thread hop, ~80 µs a reply) is needed only for what the peer
        has not taken yet."""
        try_write = getattr(self.writer, "try_write", None)
        if try_write is None:
            return line
        try:
            sent = try_write(line)
        except OSError as exc:
            log.info("session %s: peer gone (%s)", self.label, exc)
            self.close()
            return None
        return None if sent >= len(line) else (memoryview(line)[sent:],)

    def write_now(self, line: Payload) -> None:
        """Write in this thread (the outbox's writer, or stdio's compute thread)."""
        try:
            self.writer.write(line)
        except OSError as exc:
            log.info("session %s: peer gone (%s)", self.label, exc)
            self.close()

    def outbox(self) -> Outbox:
        with self._outbox_lock:
            if self._outbox is None:
                self._outbox = Outbox(self)
            return self._outbox

    def close(self) -> None:
        """No more output: what waits in the outbox is dropped (nobody will read it)."""
        self.closed.set()
        with self._outbox_lock:
            outbox = self._outbox
        if outbox is not None:
            outbox.discard()

    def drop(self) -> None:
        """Hang up on a peer that stopped reading; its work is cancelled (``on_drop``)."""
        if self.closed.is_set():
            return
        log.warning("session %s dropped: it stopped reading (more than %d bytes of replies "
                    "waiting)", self.label, self.max_outbox_bytes)
        self.close()
        hang_up = getattr(self.writer, "hang_up", None)
        if hang_up is not None:
            hang_up()  # its blocked write (and its reader) end now, not at the send timeout
        if self.on_drop is not None:
            self.on_drop(self)

    def send_attached(self, request_id: Any, parts: list[memoryview]) -> Sending:
        """Start writing a request's attached parts (float64 columns), behind the
        ``$/attached`` notice that lists them, and return what writes them.

        The request goes on while they are written (a write waits for the client to read,
        and lets go of the GIL), so the statistics of a sample cost no time on top of
        its bytes' journey. Join it before the reply is sent: the parts arrive first, and
        the client holds them by ``request_id`` until it comes. Buffered, the outbox's
        writer writes them and its order already puts them first: joining waits for nothing.
        """
        notice = {"jsonrpc": "2.0", "method": ATTACHED_METHOD, "params": {
            "id": request_id, "parts": [{"dtype": "float64", "bytes": p.nbytes} for p in parts]}}
        payload: Payload = (jsonio.dumps_line(notice), *parts)
        if self.buffered:
            self.send(payload)
            return _Queued()
        writer = threading.Thread(target=self.send, args=(payload,), daemon=True,
                                  name=f"scm-attached-{self.id}")
        writer.start()
        return writer

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.closed.is_set():
            return
        if self.buffered:
            message = {"jsonrpc": "2.0", "method": method, "params": params}
            self.send(jsonio.dumps_line(jsonio.to_json(message)))
            return
        try:
            self.writer.notify(method, params)
        except OSError as exc:
            log.info("session %s: peer gone (%s)", self.label, exc)
            self.close()


#: every outbox that may still hold payloads: the worker flushes them before it exits
_outboxes: weakref.WeakSet[Outbox] = weakref.WeakSet()


def flush_all(timeout: float) -> bool:
    """Wait (up to ``timeout`` in all) for every session's outbox to be written: the
    replies a stopping worker owes (``shutdown``'s own, the others' -32800) go out first."""
    deadline = time.monotonic() + timeout
    return all(outbox.wait_empty(deadline - time.monotonic()) for outbox in list(_outboxes))


def payload_bytes(payload: Payload) -> int:
    if isinstance(payload, bytes):
        return len(payload)
    return sum(part.nbytes if isinstance(part, memoryview) else len(part) for part in payload)


class Outbox:
    """A session's payloads waiting to be written, in order, by the session's writer thread.

    ``put`` never blocks: into an idle outbox a line goes straight to the peer, as far as
    the peer takes it without waiting; what is left, and whatever comes while anything
    waits or is being written, goes to the writer thread. It refuses (the session is then
    dropped) when the payloads waiting behind the one being written would pass the
    session's ``max_outbox_bytes``; an empty line always takes one payload, so one reply
    larger than the cap still goes out.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._waiting: deque[Payload] = deque()
        self._bytes = 0
        self._writing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._write_all, daemon=True,
                                        name=f"scm-outbox-{session.id}")
        self._thread.start()
        _outboxes.add(self)

    def put(self, payload: Payload) -> bool:
        with self._changed:
            if isinstance(payload, bytes) and not (self._waiting or self._writing):
                rest = self._session.write_at_once(payload)  # nothing waits: nothing to pass
                if rest is None:
                    return True
                payload = rest
            size = payload_bytes(payload)
            if self._waiting and self._bytes + size > self._session.max_outbox_bytes:
                return False
            self._waiting.append(payload)
            self._bytes += size
            self._changed.notify_all()
        return True

    def discard(self) -> None:
        with self._changed:
            self._waiting.clear()
            self._bytes = 0
            self._changed.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            return self._changed.wait_for(
                lambda: not (self._waiting or self._writing), deadline - time.monotonic())

    def _write_all(self) -> None:
        while (payload := self._next()) is not None:
            self._session.write_now(payload)
            del payload  # a reply's bytes must not wait here for the next one
            with self._changed:
                self._writing = False
                self._changed.notify_all()

    def _next(self) -> Payload | None:
        """The next payload (marked as being written); None once the session is closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._waiting or self._session.closed.is_set())
            if not self._waiting:
                return None
            payload = self._waiting.popleft()
            self._bytes -= payload_bytes(payload)
            self._writing = True
            return payload
