"""The client's exception tree; one class per worker error code.

    WorkerError
    ├── WorkerStartError        the worker could not be started or handshaken
    │   ├── WorkerNotFound      no worker environment was found (run `scm setup`)
    │   └── WorkerVersionMismatch  the worker environment is another scm-worker version
    ├── SetupFailed             `scm setup` could not build or check a worker environment
    ├── WorkerCrashed           the worker died with calls pending (exit code, stderr tail)
    ├── WorkerTimeout           a call took longer than its timeout; .outcome: cancelled,
    │                           killed (a private worker) or disconnected (from a daemon)
    ├── WorkerClosed            the Worker was closed; no more calls
    ├── ProtocolError           the worker wrote something that is not JSON-RPC
    └── RemoteError             the worker answered with a JSON-RPC error (code, message, data)
        ├── ParseError          -32700
        ├── InvalidRequest      -32600
        ├── MethodNotFound      -32601
        ├── InvalidParams       -32602  .field, .reason
        ├── InternalError       -32603
        ├── ValidationFailed    -32001  .r2_scores, .mean_r2, .threshold, .failed_nodes, .model_id
        ├── InsufficientData    -32002  .num_samples, .min_samples
        ├── ModelNotFound       -32003  .model_id, .reason
        ├── LimitExceeded       -32004
        ├── FitFailed           -32005
        ├── StoreCorrupt        -32006
        ├── UnsupportedQuery    -32007  .node
        ├── ClusterUnavailable  -32008  .scheduler, .reason
        ├── PermissionDenied    -32009  .uid (a daemon refused a peer of another user),
        │                               .path, .fix (a Dask worker refused the store)
        └── RequestCancelled    -32800  .request_id, .stage ("queued" | "running")

Lower-level errors (OSError, BrokenPipeError, …) are re-raised from these with ``from``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class WorkerError(Exception):
    """Base of everything this client raises about the worker."""


class WorkerStartError(WorkerError):
    def __init__(self, message: str, stderr_tail: str = "") -> None:
        tail = f"\n--- worker stderr ---\n{stderr_tail}" if stderr_tail else ""
        super().__init__(message + tail)
        self.stderr_tail = stderr_tail


class WorkerNotFound(WorkerStartError):
    """No explicit interpreter, $SCM_WORKER_PYTHON, checkout venv or provisioned environment."""


class WorkerVersionMismatch(WorkerStartError):
    """The handshake named another scm-worker version than this client's: never drive it."""

    def __init__(self, worker_version: object, client_version: str, python: str,
                 fix: str = "run `scm setup` to build a matching worker environment "
                            "(or pass a matching interpreter)") -> None:
        super().__init__(
            f"the worker at {python} is scm-worker {worker_version}, this client is "
            f"{client_version}: {fix}"
        )
        self.worker_version = worker_version
        self.client_version = client_version
        self.python = python


class SetupFailed(WorkerError):
    """Building or checking a worker environment failed; ``output`` is the installer's tail."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message + (f"\n--- output ---\n{output}" if output else ""))
        self.output = output


class WorkerCrashed(WorkerError):
    def __init__(self, message: str, exit_code: int | None = None, stderr_tail: str = "") -> None:
        detail = f" (exit code {exit_code})" if exit_code is not None else ""
        tail = f"\n--- worker stderr ---\n{stderr_tail}" if stderr_tail else ""
        super().__init__(message + detail + tail)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


#: what a timed-out call ended in, and what that did to the worker
TIMEOUT_OUTCOMES: dict[str, str] = {
    "cancelled": "the request was cancelled; the worker keeps running",
    "killed": "the worker was killed",
    "disconnected": "the connection to the daemon was dropped; the daemon keeps running",
}


class WorkerTimeout(WorkerError):
    """A call outlived its timeout. ``outcome`` says what the client did about it.

    "cancelled": the worker answered the cancellation within the grace (pid unchanged);
    "killed": a private worker did not, and was killed; "disconnected": a daemon did not,
    and the connection was dropped (a shared daemon is never killed).
    """

    def __init__(self, method: str, timeout: float, outcome: str = "killed") -> None:
        what = TIMEOUT_OUTCOMES.get(outcome, outcome)
        super().__init__(f"{method!r} did not answer within {timeout}s; {what}")
        self.method = method
        self.timeout = timeout
        self.outcome = outcome


class WorkerClosed(WorkerError):
    """The Worker was closed; make a new one."""


class ProtocolError(WorkerError):
    """The worker wrote a line that is not a JSON-RPC response for us."""


class RemoteError(WorkerError):
    """A JSON-RPC error response. ``data`` is the error's data member, or None."""

    code: ClassVar[int] = 0
    _by_code: ClassVar[dict[int, type[RemoteError]]] = {}

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code  # type: ignore[misc]
        self.message = message
        self.data = data

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RemoteError._by_code[cls.code] = cls

    @classmethod
    def from_error(cls, error: dict[str, Any]) -> RemoteError:
        """The most specific class for a wire error object."""
        code = error.get("code")
        message = str(error.get("message", ""))
        klass = cls._by_code.get(code, RemoteError) if isinstance(code, int) else RemoteError
        return klass(code if isinstance(code, int) else 0, message, error.get("data"))

    def _data(self, key: str) -> Any:
        return self.data.get(key) if isinstance(self.data, dict) else None

    def _text(self, key: str) -> str | None:
        value = self._data(key)
        return value if isinstance(value, str) else None

    def _number(self, key: str) -> float | None:
        value = self._data(key)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if numeric else None

    def _count(self, key: str) -> int | None:
        value = self._data(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class ParseError(RemoteError):
    code = -32700


class InvalidRequest(RemoteError):
    code = -32600


class MethodNotFound(RemoteError):
    code = -32601


class InvalidParams(RemoteError):
    code = -32602

    @property
    def field(self) -> str | None:
        return self._text("field")

    @property
    def reason(self) -> str | None:
        return self._text("reason")


class InternalError(RemoteError):
    code = -32603


class ValidationFailed(RemoteError):
    code = -32001

    @property
    def r2_scores(self) -> dict[str, float]:
        return self._data("r2_scores") or {}

    @property
    def mean_r2(self) -> float | None:
        return self._number("mean_r2")

    @property
    def threshold(self) -> float | None:
        return self._number("threshold")

    @property
    def failed_nodes(self) -> list[str]:
        return self._data("failed_nodes") or []

    @property
    def model_id(self) -> str | None:
        return self._text("model_id")


class InsufficientData(RemoteError):
    code = -32002

    @property
    def num_samples(self) -> int | None:
        return self._count("num_samples")

    @property
    def min_samples(self) -> int | None:
        return self._count("min_samples")


class ModelNotFound(RemoteError):
    code = -32003

    @property
    def model_id(self) -> str | None:
        return self._text("model_id")

    @property
    def reason(self) -> str | None:
        return self._text("reason")


class LimitExceeded(RemoteError):
    code = -32004


class FitFailed(RemoteError):
    code = -32005


class StoreCorrupt(RemoteError):
    code = -32006


class UnsupportedQuery(RemoteError):
    code = -32007

    @property
    def node(self) -> str | None:
        return self._text("node")


class ClusterUnavailable(RemoteError):
    """The Dask cluster of a batch could not be reached or could not run an item."""

    code = -32008

    @property
    def scheduler(self) -> str | None:
        return self._text("scheduler")

    @property
    def reason(self) -> str | None:
        return self._text("reason")


class PermissionDenied(RemoteError):
    """The daemon refused this connection: its socket belongs to another user. Or (a
    ``batch.fit`` item) a Dask worker refused the store: ``path`` and ``fix`` say why."""

    code = -32009

    @property
    def uid(self) -> int | None:
        return self._count("uid")

    @property
    def path(self) -> str | None:
        return self._text("path")

    @property
    def fix(self) -> str | None:
        return self._text("fix")


class RequestCancelled(RemoteError):
    """The request was cancelled (``$/cancelRequest``, LSP's -32800) before it finished."""

    code = -32800

    @property
    def request_id(self) -> int | None:
        return self._count("id")

    @property
    def stage(self) -> str | None:
        return self._text("stage")


def invalid_argument(field: str, reason: str) -> InvalidParams:
    """The same error the worker would give, raised before sending (e.g. for NaN)."""
    return InvalidParams(-32602, f"Invalid params: {field}: {reason}",
                         {"field": field, "reason": reason})
