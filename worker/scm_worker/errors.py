"""Error codes and WorkerError: every failure a request can meet, as JSON-RPC errors.

Standard codes come from the JSON-RPC 2.0 specification; -32001..-32099 are ours and
are listed, with their data, in docs/PROTOCOL.md ("Error codes"). Raising WorkerError
anywhere under a handler becomes an error response for that request only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from jsonrpcserver import JsonRpcError

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

VALIDATION_FAILED: Final = -32001
INSUFFICIENT_DATA: Final = -32002
MODEL_NOT_FOUND: Final = -32003
LIMIT_EXCEEDED: Final = -32004
FIT_FAILED: Final = -32005
STORE_CORRUPT: Final = -32006
UNSUPPORTED_QUERY: Final = -32007
CLUSTER_UNAVAILABLE: Final = -32008
PERMISSION_DENIED: Final = -32009
#: LSP's code for a request its client cancelled (``$/cancelRequest``)
REQUEST_CANCELLED: Final = -32800

#: Code → short name; docs/PROTOCOL.md's error table and the client's exceptions mirror it.
ERROR_NAMES: Final[dict[int, str]] = {
    PARSE_ERROR: "parse_error",
    INVALID_REQUEST: "invalid_request",
    METHOD_NOT_FOUND: "method_not_found",
    INVALID_PARAMS: "invalid_params",
    INTERNAL_ERROR: "internal_error",
    VALIDATION_FAILED: "validation_failed",
    INSUFFICIENT_DATA: "insufficient_data",
    MODEL_NOT_FOUND: "model_not_found",
    LIMIT_EXCEEDED: "limit_exceeded",
    FIT_FAILED: "fit_failed",
    STORE_CORRUPT: "store_corrupt",
    UNSUPPORTED_QUERY: "unsupported_query",
    CLUSTER_UNAVAILABLE: "cluster_unavailable",
    PERMISSION_DENIED: "permission_denied",
    REQUEST_CANCELLED: "request_cancelled",
}


class WorkerError(JsonRpcError):  # type: ignore[misc]  # jsonrpcserver ships no stubs
    """A failure that becomes one JSON-RPC error response; the worker keeps serving."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)

    def to_error_object(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(field: str, reason: str, **details: Any) -> WorkerError:
    """-32602 naming the offending field, e.g. ``traces.X`` or ``config.quality``."""
    data = {"field": field, "reason": reason, **details}
    return WorkerError(INVALID_PARAMS, f"Invalid params: {field}: {reason}", data)


def limit_exceeded(limit: str, value: int, maximum: int, field: str | None = None) -> WorkerError:
    """-32004: a configured limit would be crossed; nothing was attempted."""
    data: dict[str, Any] = {"limit": limit, "value": value, "max": maximum}
    if field is not None:
        data["field"] = field
    where = f" ({field})" if field else ""
    return WorkerError(
        LIMIT_EXCEEDED, f"Limit exceeded: {limit}{where} is {value}, max {maximum}", data
    )


def request_cancelled(
    request_id: Any, stage: str, why: str = "its client cancelled it"
) -> WorkerError:
    """-32800: the request was dropped from the queue (``stage="queued"``) or stopped."""
    return WorkerError(REQUEST_CANCELLED, f"Request cancelled: {why}",
                       {"id": request_id, "stage": stage})


def internal_error(exc: BaseException) -> WorkerError:
    return WorkerError(INTERNAL_ERROR, f"Internal error: {exc}", {"type": type(exc).__name__})


@contextmanager
def prefixed_fields(prefix: str) -> Iterator[None]:
    """Errors about a nested request name their field under ``prefix`` (samples.kind)."""
    try:
        yield
    except WorkerError as exc:
        data = exc.data if isinstance(exc.data, dict) else None
        if exc.code not in (INVALID_PARAMS, LIMIT_EXCEEDED) or data is None or "field" not in data:
            raise
        field = str(data["field"])
        raise WorkerError(exc.code, exc.message.replace(field, f"{prefix}.{field}", 1),
                          {**data, "field": f"{prefix}.{field}"}) from exc
