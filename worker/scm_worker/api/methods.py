"""Every RPC method, registered once above its handler: name, params, thread, cancellation.

One small function per method, given checked params: it calls the services or the
store. The causal questions share one handler (``services.ask``), each registered with
its own params. Methods that need DoWhy wait for the warm-up and import ``services``
then, so the handshake never waits for DoWhy to load.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

from .. import PROTOCOL_VERSION, __version__, fast, identity
from ..checks import FitConfig, Graph, Traces
from ..columns import ENCODINGS, RESULT_ENCODINGS, Column
from ..context import WorkerContext
from ..errors import internal_error
from ..jsonio import to_json
from ..versions import dowhy_version, python_version
from .registry import Method, Registry
from .signatures import (
    BATCH_FIT,
    CHANGE_MEASURES,
    EVALUATE,
    FALSIFY,
    FIT,
    MAX_KNOB,
    MAX_SLEEP_S,
    MAX_WAIT_S,
    NO_PARAMS,
    REPORT_FORMATS,
    SAMPLE_QUERY,
    SHUTDOWN,
    UNCERTAINTY,
    Signature,
    anything,
    choice,
    integer,
    knob,
    model_id,
    number,
    optional_list,
    optional_number,
    print_target,
    prune_bounds,
    sample_query,
    seed,
    string,
)

rpc: Final = Registry()


def services(ctx: WorkerContext) -> ModuleType:
    while not ctx.warmup.done.wait(0.1):  # a request cancelled while DoWhy loads stops here
        ctx.cancel.checkpoint()
    if ctx.warmup.error is not None:
        raise internal_error(ctx.warmup.error)
    from ..engine import services as loaded

    return loaded


@rpc.method("initialize", Signature((
    anything("client", None),
    anything("protocol_version", None),
    optional_list("column_encodings"),
)), runs="control")
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


@rpc.method("ping", NO_PARAMS, runs="control")
def ping(ctx: WorkerContext) -> str:
    return "pong"


@rpc.method("status", NO_PARAMS, runs="control")
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


@rpc.method("$/cancelRequest", Signature((anything("id"),)), runs="control")
def cancel_request(ctx: WorkerContext, id: Any) -> dict[str, Any]:
    """``$/cancelRequest``: stop one of this connection's requests (LSP's method and code)."""
    if ctx.session is None:
        return {"cancelled": None}
    return {"cancelled": ctx.scheduler.cancel(ctx.session, id)}


@rpc.method("shutdown", SHUTDOWN)
def shutdown(ctx: WorkerContext, force: bool) -> None:
    """Reply, then exit 0 once the reply is written. ``force`` was weighed when the request
    arrived (scheduler: refused if other sessions' work would be stopped, unless forced)."""
    ctx.stop_requested = True


@rpc.method("fit", FIT, cancel="checkpoint")
def fit(
    ctx: WorkerContext, graph: Graph, traces: dict[str, Column], config: FitConfig
) -> dict[str, Any]:
    ctx.progress("checking", 1, 1)  # after the checks: a refused fit's error is its first line
    if not ctx.warmup.done.is_set():
        ctx.progress("loading", 0, 1)  # DoWhy is still being imported (services waits for it)
    return services(ctx).fit(ctx, graph, traces, config)  # type: ignore[no-any-return]


@rpc.method("batch.fit", BATCH_FIT)
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


@rpc.method("warmup", Signature((optional_number("timeout", 0, MAX_WAIT_S),)), runs="control")
def warmup(ctx: WorkerContext, timeout: float | None) -> dict[str, Any]:
    """Wait (up to ``timeout`` seconds) for the start-up warm-up; say whether it succeeded."""
    ctx.warmup.done.wait(timeout)
    error = ctx.warmup.error
    return {
        "warm": ctx.warmup.done.is_set() and error is None,
        "seconds": ctx.warmup.seconds,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


@rpc.method("evaluate", EVALUATE, cancel="interrupt")
def evaluate(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    """The model's scores on the rows and DoWhy's ``evaluate_causal_model`` parts asked for."""
    return services(ctx).evaluate(ctx, **params)  # type: ignore[no-any-return]


@rpc.method("falsify", FALSIFY, cancel="interrupt")
def falsify(ctx: WorkerContext, graph: Graph, traces: Traces,
            max_permutations: int | None, significance_level: float,
            seed: int | None) -> dict[str, Any]:
    """DoWhy's ``falsify_graph`` on a graph and its rows: no fitted model needed."""
    return services(ctx).falsify(  # type: ignore[no-any-return]
        ctx, graph, traces, max_permutations, significance_level, seed
    )


@rpc.method("sample", Signature((model_id(), *SAMPLE_QUERY)), cancel="interrupt")
def sample(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
    """Sample columns as this connection's client reads them (``initialize``)."""
    return services(ctx).sample(  # type: ignore[no-any-return]
        ctx, **params, columns=ctx.result_columns
    )


#: the causal questions' params: every question takes ``model_id``, ``target`` and ``seed``,
#: and its sample-count knobs (default, maximum); engine/services.QUESTIONS answers them
QUESTIONS: Final[dict[str, Signature]] = {
    "effect": Signature((
        model_id(),
        anything("target"),
        anything("alternative"),
        anything("reference", None),
        anything("observed", None),
        UNCERTAINTY[0],  # effect had confidence and num_bootstrap first: positions kept
        knob("num_samples", 2000, 200_000),
        UNCERTAINTY[1],
        seed(),
        UNCERTAINTY[2],
    )),
    "arrow_strength": Signature((
        model_id(),
        anything("target"),
        knob("num_samples_conditional", 2000, 50_000),
        seed(),
        *UNCERTAINTY,
    )),
    "influence": Signature((
        model_id(),
        anything("target"),
        knob("num_training_samples", 10_000, 100_000),
        knob("num_samples_randomization", 250, 5_000),
        knob("num_samples_baseline", 1000, 20_000),
        seed(),
        *UNCERTAINTY,
    )),
    "anomaly": Signature((
        model_id(),
        anything("target"),
        anything("rows"),
        knob("num_distribution_samples", 3000, 50_000),
        seed(),
        *UNCERTAINTY,
    )),
    "distribution_change": Signature((
        model_id(),
        anything("target"),
        anything("old"),
        anything("new"),
        knob("num_samples", 2000, 200_000),
        choice("measure", CHANGE_MEASURES, "mean"),
        seed(),
        *UNCERTAINTY,
    )),
}


def question(name: str) -> Callable[..., dict[str, Any]]:
    """The handler of causal question ``name``: every question is the same template."""
    def ask(ctx: WorkerContext, **params: Any) -> dict[str, Any]:
        return services(ctx).ask(ctx, name, **params)  # type: ignore[no-any-return]

    ask.__name__ = ask.__qualname__ = name
    return ask


for _name, _params in QUESTIONS.items():
    rpc.method(_name, _params, cancel="interrupt")(question(_name))


@rpc.method("report", Signature((
    model_id(),
    choice("format", REPORT_FORMATS, "html"),
    sample_query("samples"),
)), cancel="interrupt")
def report(ctx: WorkerContext, model_id: str, format: str, samples: Any) -> dict[str, Any]:
    """The fitted model as a self-contained HTML or SVG document (the report package draws it)."""
    loaded = services(ctx)
    from .report import report as render

    return render(ctx, loaded, model_id, format, samples)


@rpc.method("models.list", NO_PARAMS)
def models_list(ctx: WorkerContext) -> dict[str, Any]:
    """Every model this worker can serve, and where it lives: memory, disk or both."""
    return {"models": to_json(ctx.store.listing()), **ctx.store.usage()}


@rpc.method("models.drop", Signature((model_id(),)))
def models_drop(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    return ctx.store.drop(model_id)


@rpc.method("models.save", Signature((model_id(),)))
def models_save(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    return ctx.store.save(model_id)


@rpc.method("models.load", Signature((model_id(),)))
def models_load(ctx: WorkerContext, model_id: str) -> dict[str, Any]:
    ctx.store.load(model_id)
    return {"model_id": model_id, "loaded": True}


@rpc.method("models.prune", Signature((
    optional_number("older_than_s", 0, MAX_KNOB),
    optional_number("max_total_mb", 0, MAX_KNOB),
), prune_bounds))
def models_prune(
    ctx: WorkerContext, older_than_s: float | None, max_total_mb: float | None
) -> dict[str, Any]:
    """Delete persisted models older than an age, then oldest first down to a total size."""
    size = None if max_total_mb is None else int(max_total_mb * 1024 * 1024)
    pruned = ctx.store.prune(older_than_s, size)
    return {"pruned": pruned, **ctx.store.usage()}


@rpc.method("debug.sleep", Signature((number("seconds", 0, MAX_SLEEP_S),)),
            cancel="checkpoint", test_only=True)
def debug_sleep(ctx: WorkerContext, seconds: float) -> float:
    """Sleep in the compute thread; a cancel wakes it (the checkpoint of a test request)."""
    ctx.cancel.wait(seconds)
    return seconds


@rpc.method("debug.exit", Signature((integer("code", 1),)), test_only=True)
def debug_exit(ctx: WorkerContext, code: int) -> None:
    os._exit(code)


@rpc.method("debug.print", Signature((string("text"), print_target("target", "sys.stdout"))),
            test_only=True)
def debug_print(ctx: WorkerContext, text: str, target: str) -> str:
    """Print where a careless library would; none of it may reach the protocol."""
    if target == "sys.stdout":
        print(text, flush=True)
    elif target == "fd1":
        os.write(1, text.encode() + b"\n")
    else:
        print(text, file=sys.stderr, flush=True)
    return target


@rpc.method("debug.raise", Signature((anything("message", "boom"),)), test_only=True)
def debug_raise(ctx: WorkerContext, message: Any) -> None:
    raise RuntimeError(str(message))


def method_table(ctx: WorkerContext) -> dict[str, Method]:
    """Name → method this worker serves; debug methods exist only with --test-methods."""
    return rpc.methods(ctx.test_methods)
