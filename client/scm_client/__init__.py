"""scm_client: a standard-library client for the scm-worker DoWhy daemon."""

import logging

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
    ProtocolError,
    RemoteError,
    StoreCorrupt,
    UnsupportedQuery,
    ValidationFailed,
    WorkerClosed,
    WorkerCrashed,
    WorkerError,
    WorkerStartError,
    WorkerTimeout,
)
from .pool import BatchItem, WorkerPool
from .results import (
    AnomalyResult,
    Attribution,
    EffectResult,
    EvaluateResult,
    FitResult,
    SampleResult,
)
from .worker import DEFAULT, State, Worker

__version__ = "0.1.0"

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
    "ProtocolError",
    "RemoteError",
    "SampleResult",
    "State",
    "StoreCorrupt",
    "UnsupportedQuery",
    "ValidationFailed",
    "Worker",
    "WorkerClosed",
    "WorkerCrashed",
    "WorkerError",
    "WorkerPool",
    "WorkerStartError",
    "WorkerTimeout",
]
