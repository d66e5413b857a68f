"""Binding a request's params to its handler through the method's declaration.

``signatures`` declares each method's params; here they are bound (by name, or by
position in declaration order) and checked before the handler runs, each problem a
-32602 whose ``data.field`` names the param. Other exceptions a handler raises become
-32603 with ``data.type`` instead of escaping.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from jsonrpcserver import Result, Success

from ..errors import WorkerError, internal_error
from .signatures import REQUIRED, Param, Signature, anything

log = logging.getLogger(__name__)


def declared_by(handler: Callable[..., Any]) -> Signature:
    """A handler's own Python signature as a declaration of unchecked params (after ``ctx``)."""
    params = list(inspect.signature(handler).parameters.values())[1:]
    return Signature(tuple(
        anything(p.name, REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ), open=any(p.kind is p.VAR_KEYWORD for p in params))


def rpc_method(
    handler: Callable[..., Any], signature: Signature | None = None
) -> Callable[..., Result]:
    """Wrap ``handler(ctx, **checked)`` as a jsonrpcserver method checking ``signature`` first."""
    declared = signature if signature is not None else declared_by(handler)
    _require_same_names(handler, declared.params)

    def method(context: Any, /, *args: Any, **kwargs: Any) -> Result:
        checked = declared.bind(list(args) if args else kwargs, context.limits)
        release_converted(kwargs, checked)
        try:
            return Success(handler(context, **checked))
        except WorkerError:
            raise
        except Exception as exc:
            log.exception("handler %s failed", handler.__name__)
            raise internal_error(exc) from exc

    method.__name__ = handler.__name__
    method.__doc__ = handler.__doc__
    return method


def release_converted(given: dict[str, Any], checked: dict[str, Any]) -> None:
    """Empty the request's containers that checking turned into new values (traces → columns).

    The request's JSON form of a big trace set is not needed once its checked form exists,
    and jsonrpcserver holds the request until the handler returns: emptied here, its
    lists and strings are freed before the work starts instead of lasting the whole fit.
    """
    for name, value in given.items():
        if isinstance(value, (dict, list)) and checked.get(name) is not value:
            value.clear()


def _require_same_names(handler: Callable[..., Any], params: tuple[Param, ...]) -> None:
    """A handler takes exactly its declared params (or ``**params``): they cannot drift apart."""
    taken = list(inspect.signature(handler).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in taken):
        return
    names = [p.name for p in taken]
    if names != [p.name for p in params]:
        raise TypeError(
            f"{handler.__name__} takes {names}, its declaration {[p.name for p in params]}"
        )
