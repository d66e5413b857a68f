"""Each RPC method registered once: its wire name, its params, where it runs and how it stops.

``@rpc.method("effect", params, cancel="interrupt")`` above a handler (as pygls'
``@server.feature``) is the whole of a method's declaration; nothing else names it.
From this one table come the handlers jsonrpcserver calls (params bound and checked
first, ``binding.rpc_method``), the methods ``initialize`` lists, and the control set:
the methods a connection's reader answers itself. The server does not import the api:
``__main__`` hands it ``table()`` and ``control()`` as data.

How a method stops when it is cancelled (docs/PROTOCOL.md, ``$/cancelRequest``):

* ``"interrupt"``: a read-only computation; a cancel interrupts it wherever it is
  (``CancelToken.interruptible``).
* ``"checkpoint"``: it stops at its own checkpoints (the fit's node loop, so joblib's
  warm processes survive; ``debug.sleep``).
* ``"finish"``: once started it runs to its end (what writes the store must never stop
  half-way); a cancel reaches it only while it waits in the queue. A control method is
  one of these: it is answered as it arrives, before any cancel can name it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, get_args

from jsonrpcserver import Result

from ..context import WorkerContext
from .binding import rpc_method
from .signatures import Signature

Runs = Literal["control", "compute"]
Cancel = Literal["interrupt", "checkpoint", "finish"]
RUNS: Final = get_args(Runs)
CANCELS: Final = get_args(Cancel)
Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Method:
    """One RPC method as registered."""

    name: str
    handler: Callable[..., Any]
    params: Signature
    #: ``"control"``: answered by the connection's reader; ``"compute"``: queued
    runs: Runs
    cancel: Cancel
    #: served only with ``--test-methods``
    test_only: bool

    def served(self) -> Callable[..., Result]:
        """The handler as jsonrpcserver calls it: params bound and checked, then run as it stops."""
        run = interruptible(self.handler) if self.cancel == "interrupt" else self.handler
        return rpc_method(run, self.params)


class Registry:
    """The RPC methods, filled by ``method`` as their module is imported."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def method(self, name: str, params: Signature, *, runs: Runs = "compute",
               cancel: Cancel = "finish", test_only: bool = False) -> Callable[[Handler], Handler]:
        """Register the decorated handler as RPC method ``name``; the handler is unchanged."""
        if runs not in RUNS or cancel not in CANCELS:
            raise ValueError(f"{name}: runs must be one of {RUNS}, cancel one of {CANCELS}")
        if runs == "control" and cancel != "finish":
            raise ValueError(f"{name}: a control method is answered at once; nothing cancels it")

        def register(handler: Handler) -> Handler:
            if name in self._methods:
                raise ValueError(f"RPC method {name!r} is registered twice")
            method = Method(name, handler, params, runs, cancel, test_only)
            method.served()  # refuses a handler whose params differ from its declaration now
            self._methods[name] = method
            return handler

        return register

    def methods(self, test_methods: bool) -> dict[str, Method]:
        """Name → method; the ``test_only`` ones only with ``--test-methods``."""
        return {name: m for name, m in self._methods.items() if test_methods or not m.test_only}

    def table(self, test_methods: bool) -> dict[str, Callable[..., Result]]:
        """Name → what jsonrpcserver calls (``protocol.Dispatcher``'s method table)."""
        return {name: m.served() for name, m in self.methods(test_methods).items()}

    def control(self) -> frozenset[str]:
        """The methods a connection's reader answers itself, never queued behind a computation."""
        return frozenset(name for name, m in self._methods.items() if m.runs == "control")


def interruptible(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A read-only computation: a cancel interrupts it wherever it is (cancellation.py).

    The fit is not one: it stops at its node-task checkpoints instead, so joblib's warm
    processes survive, and what writes the store must never stop half-way.
    """
    @functools.wraps(handler)
    def run(ctx: WorkerContext, *args: Any, **kwargs: Any) -> Any:
        with ctx.cancel.interruptible():
            return handler(ctx, *args, **kwargs)

    return run
