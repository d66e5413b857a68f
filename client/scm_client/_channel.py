"""Line framing over a transport (a worker's pipes or a daemon's socket): one writer lock,
one reader thread, an id table.

Any number of threads may call ``request`` at once: each gets a Future keyed by a
fresh id, and the reader thread resolves it when the matching line arrives. A call's
own ``on_progress`` travels with it in the same table: a ``progress`` notification
names its ``request_id``, and goes to that call's callback only (calls without one, and
other notifications, go to the channel-wide ``on_notification``). When the line stream
ends, every pending Future fails with WorkerCrashed carrying the transport's tail (the
stderr of a private worker, the log of a daemon). ``cancel`` sends LSP's
``$/cancelRequest`` for one pending id; the worker answers that request with -32800.
The bytes themselves are _transport.py's business.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ._jsonline import encode_line
from ._transport import PipeTransport, Transport
from .errors import ProtocolError, RemoteError, WorkerCrashed, WorkerError, invalid_argument
from .results import AttachedResult

log = logging.getLogger("scm_client.worker")

#: the worker's notice that a request's attached parts follow it; its reply comes later
ATTACHED_METHOD = "$/attached"

Notification = Callable[[str, Any], None]
#: a call's own progress callback: the ``params`` of each of its ``progress`` notifications
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Call:
    """A pending request: what resolves it, and who hears about its progress."""

    future: Future[Any]
    on_progress: Progress | None = None


def _float64_part(part: Any) -> bool:
    """One part of a ``$/attached``: ``{"dtype": "float64", "bytes": n}``, n a multiple of 8."""
    if not isinstance(part, dict) or part.get("dtype") != "float64":
        return False
    size = part.get("bytes")
    return type(size) is int and size >= 0 and size % 8 == 0


class Channel:
    def __init__(
        self,
        transport: Transport | subprocess.Popen[bytes],
        on_notification: Notification | None = None,
        stderr_lines: int = 200,
    ) -> None:
        if isinstance(transport, subprocess.Popen):
            transport = PipeTransport(transport, stderr_lines)
        self.transport: Transport = transport
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending: dict[int, _Call] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed_reason: WorkerError | None = None
        self._attached: dict[Any, list[array[float]]] = {}  # request id → parts, until its reply
        self._reader = threading.Thread(target=self._read_lines,
                                        name=f"scm-stdout-{transport.label}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self.transport.pid

    # -- requests ---------------------------------------------------------------
    def request(
        self, method: str, params: Any = None, on_progress: Progress | None = None
    ) -> tuple[int, Future[Any]]:
        """Send a request; the Future resolves to its result or raises its error.

        ``on_progress`` receives this request's ``progress`` notifications, and no other's.
        """
        future: Future[Any] = Future()
        with self._lock:
            if self._closed_reason is not None:
                raise self._closed_reason
            request_id = next(self._ids)
            self._pending[request_id] = _Call(future, on_progress)
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        try:
            self.send_line(encode(message))
        except ValueError as exc:  # NaN/Infinity, refused by encode before anything is sent
            self.forget(request_id)
            raise invalid_argument(
                "params", "NaN and Infinity cannot be sent as JSON (use null)"
            ) from exc
        except BaseException:
            self.forget(request_id)
            raise
        return request_id, future

    def send_line(self, line: bytes) -> None:
        try:
            with self._write_lock:
                self.transport.write(line)
        except (OSError, ValueError) as exc:
            self._reader.join(timeout=5)
            raise self._closed_reason or WorkerCrashed(
                "worker stopped reading its input", self.transport.exit_code(0),
                self.stderr_tail()
            ) from exc

    def cancel(self, request_id: int) -> bool:
        """Ask the worker to cancel a pending request (``$/cancelRequest``, a notification).

        The request's Future then resolves as the worker answers it: RequestCancelled
        (-32800), or its result if it finished first. False when the id is not pending
        or the line could not be sent (the worker is gone: the Future fails anyway).
        """
        with self._lock:
            if request_id not in self._pending or self._closed_reason is not None:
                return False
        message = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}}
        try:
            self.send_line(encode(message))
        except WorkerError:
            return False
        return True

    def forget(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
            self._attached.pop(request_id, None)

    # -- reading ----------------------------------------------------------------
    def _read_lines(self) -> None:
        try:
            for line in self.transport.read_lines():
                if line and not line.isspace():  # blank: no message (isspace copies nothing)
                    self._handle_line(line)
        except (OSError, ValueError, EOFError):
            pass
        except ProtocolError as exc:
            self.fail_all(exc)
            return
        self.fail_all(self._crash_error())

    def _crash_error(self) -> WorkerCrashed:
        code = self.transport.exit_code(2)
        return WorkerCrashed(self.transport.eof_message(), code, self.stderr_tail())

    def _handle_line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"worker wrote a line that is not JSON: {line[:200]!r}") from exc
        if isinstance(message, dict) and message.get("method") == ATTACHED_METHOD:
            self._receive_attached(message.get("params"))
            return
        for item in message if isinstance(message, list) else [message]:
            self._dispatch(item)

    def _receive_attached(self, params: Any) -> None:
        """Read the parts a ``$/attached`` lists and hold them for its request's reply
        (a request nobody waits for any more gets them read and dropped)."""
        parts = params.get("parts") if isinstance(params, dict) else None
        if not isinstance(parts, list) or not all(map(_float64_part, parts)):
            raise ProtocolError(f"worker wrote a {ATTACHED_METHOD} whose parts are not float64 "
                                f"byte counts: {params!r:.200}")
        arrays = self._read_parts(parts)
        request_id = params.get("id")
        with self._lock:
            if type(request_id) is int and request_id in self._pending:  # our ids are ints
                self._attached[request_id] = arrays

    def _read_parts(self, parts: list[dict[str, Any]]) -> list[array[float]]:
        """Each part read straight into its own array (no copy after the kernel's); EOF
        before their end is the peer's death."""
        arrays = []
        for part in parts:
            floats = array("d", bytes(8)) * (part["bytes"] // 8)
            buffer = memoryview(floats).cast("B")
            if self.transport.read_into(buffer) != len(buffer):
                raise EOFError("the attached bytes ended early")
            if sys.byteorder == "big":
                floats.byteswap()
            arrays.append(floats)
        return arrays

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            raise ProtocolError(
                f"worker wrote a JSON value that is not a message: {message!r:.200}"
            )
        if "method" in message and "id" not in message:
            self._notify(message)
            return
        with self._lock:
            call = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            attached = self._attached.pop(message.get("id"), None)
        if call is None:
            log.warning("reply for no pending request: %.300s", message)
            return
        future = call.future
        if "error" in message:
            future.set_exception(RemoteError.from_error(message["error"]))
        elif "result" in message:
            result = message["result"]
            if attached is not None and isinstance(result, dict):
                result = AttachedResult(result, attached)
            future.set_result(result)
        else:
            future.set_exception(
                ProtocolError(f"reply has neither result nor error: {message!r:.200}")
            )

    def _notify(self, message: dict[str, Any]) -> None:
        params = message.get("params")
        own = self._progress_callback(message["method"], params)
        try:
            if own is not None and isinstance(params, dict):
                own(params)
            elif self._on_notification is not None:
                self._on_notification(message["method"], params)
        except Exception:  # a callback's bug must not kill the reader
            log.exception("notification callback failed")

    def _progress_callback(self, method: str, params: Any) -> Progress | None:
        """The callback of the pending call a ``progress`` notification names, if it has one."""
        if method != "progress" or not isinstance(params, dict):
            return None
        request_id = params.get("request_id")
        if not isinstance(request_id, int):
            return None
        with self._lock:
            call = self._pending.get(request_id)
        return call.on_progress if call is not None else None

    def fail_all(self, error: WorkerError) -> None:
        """Fail every pending call with ``error`` and refuse new ones.

        The reader calls it when stdout closes or turns to garbage; the Worker calls it
        before it kills a worker that timed out.
        """
        with self._lock:
            if self._closed_reason is None:
                self._closed_reason = error
            pending, self._pending = self._pending, {}
            self._attached.clear()
        for call in pending.values():
            if not call.future.done():
                call.future.set_exception(error)

    # -- state ------------------------------------------------------------------
    @property
    def crashed(self) -> bool:
        """The peer went away on its own (EOF or garbage), not closed by us."""
        return isinstance(self._closed_reason, (WorkerCrashed, ProtocolError))

    @property
    def alive(self) -> bool:
        return self._closed_reason is None and self.transport.alive()

    def stderr_tail(self) -> str:
        """A private worker's stderr tail, or the last lines of a daemon's log."""
        return self.transport.tail()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the reader thread to see EOF, then release the transport."""
        self._reader.join(timeout)
        self.transport.close(timeout)

    def disconnect(self, error: WorkerError) -> None:
        """Fail every pending call with ``error`` and close the transport (a socket's reader
        sees EOF at once); the peer process is left alone."""
        self.fail_all(error)
        self.transport.close()
        self._reader.join(5)


def encode(message: Any) -> bytes:
    """One strict-JSON line; NaN/Infinity never leave the client."""
    return encode_line(message)
