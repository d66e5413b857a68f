"""Binding JSON-RPC params to handler signatures, with errors that name the field.

jsonrpcserver would report a signature mismatch as a bare string; here each problem is
a -32602 whose ``data.field`` names the parameter, and other exceptions become -32603
with ``data.type`` instead of escaping.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

from jsonrpcserver import Success
from jsonrpcserver.result import Result

from .errors import WorkerError, internal_error, invalid_params

log = logging.getLogger(__name__)

_MISSING = re.compile(r"missing a required argument: '(\w+)'")
_UNEXPECTED = re.compile(r"got an unexpected keyword argument '(\w+)'")


def _bind_error(exc: TypeError) -> WorkerError:
    text = str(exc)
    if match := _MISSING.search(text):
        return invalid_params(match.group(1), "required parameter is missing")
    if match := _UNEXPECTED.search(text):
        return invalid_params(match.group(1), "unknown parameter")
    return invalid_params("params", text)


def bind(signature: inspect.Signature, context: Any, /, *args: Any, **kwargs: Any) -> inspect.BoundArguments:
    """A handler's arguments (``context`` first, then the params), or -32602 naming the param.

    Also for params that arrive inside another request (``batch.fit``'s items are
    ``fit``'s params): they are refused exactly as on the wire.
    """
    context_name = next(iter(signature.parameters))
    if context_name in kwargs:  # the handler's own context slot is not a wire parameter
        raise invalid_params(context_name, "unknown parameter")
    try:
        return signature.bind(context, *args, **kwargs)
    except TypeError as exc:
        raise _bind_error(exc) from None


def rpc_method(handler: Callable[..., Any]) -> Callable[..., Result]:
    """Wrap ``handler(ctx, **params)`` as a jsonrpcserver method."""
    signature = inspect.signature(handler)

    def method(context: Any, /, *args: Any, **kwargs: Any) -> Result:
        bound = bind(signature, context, *args, **kwargs)
        try:
            return Success(handler(*bound.args, **bound.kwargs))
        except WorkerError:
            raise
        except Exception as exc:
            log.exception("handler %s failed", handler.__name__)
            raise internal_error(exc) from exc

    # Not functools.wraps: jsonrpcserver would follow __wrapped__ and bind the params
    # itself, losing the field names.
    method.__name__ = handler.__name__
    method.__doc__ = handler.__doc__
    return method
