"""Line protocol: the only code that touches the real stdout.

One JSON-RPC message (or batch) per line in, at most one line out; notifications get
no line. Each request's envelope is checked once, here (``_request_problem``), and
batches are split here too: jsonrpcserver answers a batch with one bad entry with a
single error where the specification wants one error per entry, so each entry goes to
it alone. jsonrpcserver does what it earns its place for, through its public
``dispatch_to_serializable``: the method table, the call (a ``JsonRpcError`` becomes its
error, anything else -32603) and the result → response mapping. The line is parsed
once, strictly (``jsonio``), and the envelope checked here, so the deserializer and
validator it takes are the identity: its default ones would parse again and repeat the
envelope check as a jsonschema validation, at several times the cost of a ``ping``.
Its argument check runs on every call, against each method's signature computed once.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from jsonrpcserver import dispatch_to_serializable

from .. import errors, jsonio
from .session import Payload

log = logging.getLogger(__name__)

Reply = dict[str, Any]


class LineTooLong(Exception):
    """The incoming line exceeded the byte limit; the rest of it was discarded."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def read_line(stream: BinaryIO, max_bytes: int) -> bytes | None:
    """Read one line of at most ``max_bytes``; None at EOF.

    An over-long line is consumed to its end (so the next line parses correctly) and
    reported with LineTooLong instead of being buffered whole.
    """
    line = stream.readline(max_bytes + 1)
    if not line:
        return None
    if len(line) <= max_bytes or line.endswith(b"\n") and len(line) == max_bytes + 1:
        return line
    size = len(line)
    while not line.endswith(b"\n"):
        line = stream.readline(1 << 20)
        if not line:
            break
        size += len(line)
    raise LineTooLong(size)


def error_reply(code: int, message: str, data: Any = None, id_: Any = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": id_}


def _legal_id(id_: Any) -> bool:
    """A string, an integer, a finite float or null (1e400 parses to inf: not echoable)."""
    if isinstance(id_, float):
        return math.isfinite(id_)
    return id_ is None or (isinstance(id_, (str, int)) and not isinstance(id_, bool))


def _echoable_id(message: Any) -> Any:
    """The id to put on an Invalid Request reply: the request's own, when it is legal."""
    if isinstance(message, dict) and _legal_id(message.get("id")):
        return message.get("id")
    return None


def _request_problem(message: Any) -> str | None:
    """Why ``message`` is not a JSON-RPC 2.0 request object, or None when it is."""
    if not isinstance(message, dict):
        return "a request must be a JSON object"
    if message.get("jsonrpc") != "2.0":
        return 'member "jsonrpc" must be exactly "2.0"'
    if not isinstance(message.get("method"), str):
        return 'member "method" must be a string'
    if "params" in message and not isinstance(message["params"], (dict, list)):
        return 'member "params" must be an object or an array'
    if "id" in message and not _legal_id(message["id"]):
        return 'member "id" must be a string, a finite number or null'
    extra = set(message) - {"jsonrpc", "method", "params", "id"}
    if extra:
        return f"unknown members: {sorted(extra)}"
    return None


def _as_checked(message: Any) -> Any:
    """jsonrpcserver's deserializer and validator both: the line was parsed strictly
    (``parse_line``) and the envelope checked (``_request_problem``) before it sees it."""
    return message


def _signed(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with its signature computed once, as ``inspect`` reads it.

    jsonrpcserver checks every call's arguments against ``inspect.signature(method)``;
    with ``__signature__`` set that is a lookup instead of a walk of the code object
    (a tenth of a ``ping``). The signature is the method's own, so the check is unchanged.
    """
    if getattr(method, "__signature__", None) is None:
        try:
            method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
        except AttributeError:  # a bound method: inspect works it out on each call
            pass
    return method


class Dispatcher:
    """Turns one parsed message into its reply (or None for a notification)."""

    def __init__(self, methods: Mapping[str, Callable[..., Any]], context: Any) -> None:
        self.methods = {name: _signed(method) for name, method in methods.items()}
        self.context = context

    def handle_message(self, message: Any) -> Reply | list[Reply] | None:
        if isinstance(message, list):
            if not message:
                return error_reply(errors.INVALID_REQUEST, "Invalid Request: empty batch")
            replies = [r for r in map(self.handle_one, message) if r is not None]
            return replies or None
        return self.handle_one(message)

    def handle_one(self, message: Any) -> Reply | None:
        """One request's reply; None for a notification (run, never answered)."""
        problem = _request_problem(message)
        if problem is not None:
            return error_reply(
                errors.INVALID_REQUEST, f"Invalid Request: {problem}", None, _echoable_id(message)
            )
        reply: Reply | None = dispatch_to_serializable(
            message, self.methods, context=self.context,
            deserializer=_as_checked, validator=_as_checked,
        )
        return reply


def handle_line(raw: bytes, dispatcher: Dispatcher) -> Reply | list[Reply] | None:
    """Decode, parse and dispatch one line; every failure becomes an error reply."""
    message, problem = parse_line(raw)
    return problem if problem is not None else dispatcher.handle_message(message)


def parse_line(raw: bytes) -> tuple[Any, Reply | None]:
    """The line's message, or the parse error to answer instead."""
    try:
        return jsonio.loads_strict(raw.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        problem = f"invalid UTF-8 ({exc.reason})"
    except RecursionError:
        problem = "JSON nested too deeply"
    except ValueError as exc:
        problem = str(exc)
    return None, error_reply(errors.PARSE_ERROR, f"Parse error: {problem}")


def encode_reply(reply: Reply | list[Reply]) -> bytes:
    """Serialize a reply; a result that is not strict JSON becomes an internal error.

    ASCII output: a lone surrogate echoed from a request (``"\\ud800"`` is legal JSON)
    cannot be encoded as UTF-8 but can be written as an escape.
    """
    try:
        return _encode(reply)
    except (ValueError, TypeError, RecursionError) as exc:
        log.error("reply could not be serialized: %s", exc)
        replies = reply if isinstance(reply, list) else [reply]
        fallback = [
            r
            if _serializable(r)
            else error_reply(
                errors.INTERNAL_ERROR,
                "Internal error: result is not valid JSON",
                {"type": type(exc).__name__},
                r.get("id"),
            )
            for r in replies
        ]
        out = fallback if isinstance(reply, list) else fallback[0]
        try:
            return _encode(out)
        except (ValueError, TypeError, RecursionError):  # the id itself cannot be written
            return _encode(
                error_reply(errors.INTERNAL_ERROR, "Internal error: reply is not valid JSON")
            )


def _encode(reply: Reply | list[Reply]) -> bytes:
    return jsonio.dumps_line(reply)


def _serializable(reply: Reply) -> bool:
    try:
        _encode(reply)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


class LineWriter:
    """Writes whole lines to one connection; safe to share with progress emitters.

    ``close`` takes the same lock as ``write``: once closed, nothing more is written, so
    a reply computed for a connection that went away can never reach the descriptor
    the next connection is given.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False

    def write(self, payload: Payload) -> None:
        with self._lock:
            if self._closed:
                return
            for part in (payload,) if isinstance(payload, bytes) else payload:
                self._stream.write(part)
            self._stream.flush()

    def try_write(self, line: bytes) -> int:
        """Write what the stream takes of ``line`` without waiting (0 from a stream that
        cannot say); the caller writes the rest with ``write``."""
        try_write = getattr(self._stream, "try_write", None)
        with self._lock:
            if self._closed:
                return len(line)  # nobody reads it: as ``write`` would, drop it
            return 0 if try_write is None else int(try_write(line))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a server→client notification (no id), e.g. ``progress``."""
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        self.write(_encode(jsonio.to_json(message)))

    def hang_up(self) -> None:
        """Shut the connection down now, even in the middle of a write (its peer stopped
        reading): the blocked write fails at once. ``close`` still frees the descriptor,
        under the lock. A stream that cannot be shut down (a pipe) is left as it is."""
        shut_down = getattr(self._stream, "hang_up", None)
        if shut_down is not None:
            shut_down()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            try:
                self._stream.close()
            except OSError:
                pass


def too_long_reply(size: int, max_bytes: int) -> Reply:
    err = errors.limit_exceeded("max_line_bytes", size, max_bytes)
    return error_reply(err.code, err.message, err.data)
