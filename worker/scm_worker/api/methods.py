"""One small function per RPC method, given checked params: call the services or the store.

Wire names match handler names (``models.list`` → ``models_list``). Methods that need
DoWhy wait for the warm-up and import ``services`` then, so the handshake never waits
for DoWhy to load.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .. import PROTOCOL_VERSION, __version__, fast, identity
from ..checks import FitConfig, Graph
from ..columns import ENCODINGS, RESULT_ENCODINGS, Column
from ..context import WorkerContext
from ..errors import internal_error
from ..jsonio import to_json
from ..versions import dowhy_version, python_version
from . import signatures
from .binding import rpc_method


def services(ctx: WorkerContext) -> ModuleType:
    while not ctx.warmup.done.wait(0.1):  # a request cancelled while DoWhy loads stops here
        ctx.cancel.checkpoint()
    if ctx.warmup.error is not None:
        raise internal_error(ctx.warmup.error)
    from ..engine import services as loaded

    return loaded


def initialize(
    ctx: WorkerContext, client: Any, protocol_version: Any, column_encodings: list[Any] | None
) -> dict[str, Any]:
    """Handshake: who this worker is, what it serves, and its limits.

    ``column_encodings`` lists what the client can read: numeric sample columns come
    back in the first of ``"attached"``, ``"binary"`` it names, else as JSON lists.
    Unknown names are ignored (a newer client).
    """
    if column_encodings is not None and ctx.session is not None:
        ctx.session.result_columns = next(
            (name for name in ("attached", "binary") if name in column_encodings), "json"
        )
    return {
        "protocol_version": PROTOCOL_VERSION,
        "worker_version": __version__,
        "python_version": python_version(),
        "dowhy_version": dowhy_version(),
        "pid": ctx.pid,
        "methods": sorted(method_table(ctx)),
        "limits": ctx.limits.as_dict(),
        "threads": ctx.threads,
        "warm": ctx.warmup.done.is_set() and ctx.warmup.error is None,
        "store": ctx.store.usage(),
        "column_encodings": list(ENCODINGS),
        "result_encodings": list(RESULT_ENCODINGS),
        "daemon": ctx.socket_path is not None,
        "socket": ctx.socket_path,
        "fast": fast.report(),
    }


def ping(ctx: WorkerContext) -> str:
    return "pong"


def status(ctx: WorkerContext) -> dict[str, Any]:
    """Who this worker is and what it is doing; answered at once, also during a fit.

    Who includes which code: the interpreter, its environment, where ``scm_worker`` was
    imported from and the digest of that source, ``stale`` once the files changed.
    """
    usage = ctx.store.usage()
    return {
        "pid": ctx.pid,
        "worker_version": __version__,
        "protocol_version": PROTOCOL_VERSION,
        "uptime_s": round(time.monotonic() - ctx.started_at, 3),
        "warm": ctx.warmup.done.is_set() and ctx.warmup.error is None,
        "connections": ctx.connections.count() if ctx.connections is not None else 1,
        "requests_served": ctx.scheduler.served,
        "queue_length": len(ctx.scheduler.queue),
        "running": ctx.scheduler.running(),
        "models": {"in_memory": usage["models_in_memory"], "on_disk": usage["models_on_disk"],
                   **usage},
        "rss_mb": round(resident_mb(), 1),
        "socket": ctx.socket_path,
        "idle_timeout_s": ctx.idle_timeout_s,
        "threads": ctx.threads,
        "store_dir": usage["store_dir"],
        "fast": fast.report(),
        **identity.current(),
    }


def resident_mb() -> float:
    """This process's resident set size now (not its peak), from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def cancel_request(ctx: WorkerContext, id: Any) -> dict[str, Any]:
    """``$/cancelRequest``: stop one of this connection's requests (LSP's method and code)."""
    if ctx.session is None:
        return {"cancelled": None}
    return {"cancelled": ctx.scheduler.cancel(ctx.session, id)}


def shutdown(ctx: WorkerContext, force: bool) -> None:
    """Reply, then exit 0 once the reply is written. ``force`` was weighed when the request
    arrived (scheduler: refused if other sessions' work would be stopped, unless forced)."""
    ctx.stop_requested = True


def fit(
    ctx: WorkerContext, graph: Graph, traces: dict[str, Column], config: FitConfig
) -> dict[str, Any]:
    ctx.progress("checking", 1, 1)  # after the checks: a refused fit's error is its first line
    if not ctx.warmup.done.is_set():
        ctx.progress("loading", 0, 1)  # DoWhy is still being imported (services waits for it)
    return services(ctx).fit(ctx, graph, traces, config)  # type: ignore[no-any-return]


def batch_fit(ctx: WorkerContext, requests: list[Any], scheduler: str, persist: bool,
              connect_timeout: float, insecure: bool, tls_ca_file: str | None,
              tls_cert: str | None, tls_key: str | None) -> dict[str, Any]:
    """Fit many requests on a Dask cluster; this worker is its Dask client (gateway.py).

    ``insecure`` was spent at the boundary (dask_address.check): it only admits the address.
    """
    from . import gateway

    tls = {"tls_ca_file": tls_ca_file, "tls_cert": tls_cert, "tls_key": tls_key}
    return gateway.batch_fit(
        ctx, lambda: services(ctx), requests, scheduler, persist, connect_timeout, tls
    )


def warmup(ctx: WorkerContext, timeout: float | None) -> dict[str, Any]:
    """Wait (up to ``timeout`` seconds) for the start-up warm-up; say whether it succeeded."""
    ctx.warmup.done.wait(timeout)
    error = ctx.warmup.error
    return {
        "warm": ctx.warmup.done.is_set() and error is None,
        "seconds": ctx.warmup.seconds,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


def evaluate(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).evaluate(ctx, **params)  # type: ignore[no-any-return]


def sample(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    """Sample columns as this connection's client reads them (``initialize``)."""
    return services(ctx).sample(  # type: ignore[no-any-return]
        ctx, **params, columns=ctx.result_columns
    )


def effect(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).effect(ctx, **params)  # type: ignore[no-any-return]


def arrow_strength(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).arrow_strength(ctx, **params)  # type: ignore[no-any-return]


def influence(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).influence(ctx, **params)  # type: ignore[no-any-return]


def anomaly(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).anomaly(ctx, **params)  # type: ignore[no-any-return]


def distribution_change(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    return services(ctx).distribution_change(ctx, **params)  # type: ignore[no-any-return]


def report(ctx: WorkerContext, model_id: str, format: str, samples: Any) -> dict[str, Any]:
    """The fitted model as a self-contained HTML or SVG document (the report package draws it)."""
    loaded = services(ctx)
    from .report import report as render

    return render(ctx, loaded, model_id, format, samples)


def models_list(ctx: WorkerContext) -> dict[str, Any]:
    """Every model this worker can serve, and where it lives: memory, disk or both."""
    return {"models": to_json(ctx.store.listing()), **ctx.store.usage()}


def models_drop(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    return ctx.store.drop(model_id)


def models_save(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    return ctx.store.save(model_id)


def models_load(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    ctx.store.load(model_id)
    return {"model_id": model_id, "loaded": True}


def models_prune(
    ctx: WorkerContext, older_than_s: float | None, max_total_mb: float | None
) -> dict[str, Any]:
    """Delete persisted models older than an age, then oldest first down to a total size."""
    size = None if max_total_mb is None else int(max_total_mb * 1024 * 1024)
    pruned = ctx.store.prune(older_than_s, size)
    return {"pruned": pruned, **ctx.store.usage()}


def debug_sleep(ctx: WorkerContext, seconds: float) -> float:
    """Sleep in the compute thread; a cancel wakes it (the checkpoint of a test request)."""
    ctx.cancel.wait(seconds)
    return seconds


def debug_exit(ctx: WorkerContext, code: int) -> None:
    os._exit(code)


def debug_print(ctx: WorkerContext, text: str, target: str) -> str:
    """Print where a careless library would; none of it may reach the protocol."""
    if target == "sys.stdout":
        print(text, flush=True)
    elif target == "fd1":
        os.write(1, text.encode() + b"\n")
    else:
        print(text, file=sys.stderr, flush=True)
    return target


def debug_raise(ctx: WorkerContext, message: Any) -> None:
    raise RuntimeError(str(message))


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


_PUBLIC: dict[str, Callable[..., Any]] = {
    "initialize": initialize,
    "ping": ping,
    "status": status,
    "$/cancelRequest": cancel_request,
    "warmup": warmup,
    "shutdown": shutdown,
    "fit": fit,
    "batch.fit": batch_fit,
    "evaluate": interruptible(evaluate),
    "sample": interruptible(sample),
    "effect": interruptible(effect),
    "arrow_strength": interruptible(arrow_strength),
    "influence": interruptible(influence),
    "anomaly": interruptible(anomaly),
    "distribution_change": interruptible(distribution_change),
    "report": interruptible(report),
    "models.list": models_list,
    "models.drop": models_drop,
    "models.save": models_save,
    "models.load": models_load,
    "models.prune": models_prune,
}

_TEST_ONLY: dict[str, Callable[..., Any]] = {
    "debug.sleep": debug_sleep,
    "debug.exit": debug_exit,
    "debug.print": debug_print,
    "debug.raise": debug_raise,
}


def method_table(ctx: WorkerContext) -> dict[str, Callable[..., Any]]:
    """Name → handler; debug methods exist only with --test-methods."""
    return {**_PUBLIC, **(_TEST_ONLY if ctx.test_methods else {})}


def build_methods(ctx: WorkerContext) -> dict[str, Callable[..., Any]]:
    """Each handler behind its declared params (signatures.py), checked before it runs."""
    declared = {**signatures.PUBLIC, **signatures.TEST_ONLY}
    return {
        name: rpc_method(handler, declared[name]) for name, handler in method_table(ctx).items()
    }
