"""scm_client: a standard-library client for the scm-worker DoWhy daemon."""

import logging

from ._version import __version__
from .errors import (
    ClusterUnavailable,
    FitFailed,
    InsufficientData,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    ModelNotFound,
    ParseError,
    PermissionDenied,
    ProtocolError,
    RemoteError,
    RequestCancelled,
    SetupFailed,
    StoreCorrupt,
    UnsupportedQuery,
    ValidationFailed,
    WorkerClosed,
    WorkerCrashed,
    WorkerError,
    WorkerNotFound,
    WorkerStartError,
    WorkerTimeout,
    WorkerVersionMismatch,
)
from .pool import BatchItem, WorkerPool
from .results import (
    AnomalyResult,
    Attribution,
    EffectResult,
    EvaluateResult,
    FalsifyResult,
    FitResult,
    SampleResult,
)
from .worker import DEFAULT, State, Worker

# A library does not configure logging; without this, Python's last-resort handler
# would print the worker's warnings on the caller's stderr.
logging.getLogger("scm_client").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT",
    "AnomalyResult",
    "Attribution",
    "BatchItem",
    "ClusterUnavailable",
    "EffectResult",
    "EvaluateResult",
    "FalsifyResult",
    "FitFailed",
    "FitResult",
    "InsufficientData",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "LimitExceeded",
    "MethodNotFound",
    "ModelNotFound",
    "ParseError",
    "PermissionDenied",
    "ProtocolError",
    "RemoteError",
    "RequestCancelled",
    "SampleResult",
    "SetupFailed",
    "State",
    "StoreCorrupt",
    "UnsupportedQuery",
    "ValidationFailed",
    "Worker",
    "WorkerClosed",
    "WorkerCrashed",
    "WorkerError",
    "WorkerNotFound",
    "WorkerPool",
    "WorkerStartError",
    "WorkerTimeout",
    "WorkerVersionMismatch",
    "__version__",
]
