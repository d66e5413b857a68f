"""One small function per RPC method: check params, call the services or the store.

Wire names match handler names (``models.list`` → ``models_list``). Methods that need
DoWhy wait for the warm-up and import ``services`` then, so the handshake never waits
for DoWhy to load.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import PROTOCOL_VERSION, __version__, requests
from .context import WorkerContext
from .errors import internal_error, invalid_params
from .jsonio import to_json
from .params import rpc_method
from .requests import json_type
from .versions import dowhy_version, python_version

#: bounds on numeric knobs that are not sample counts: past these, floats overflow
MAX_KNOB = 1e12
MAX_WAIT_S = 86_400


def services(ctx: WorkerContext) -> ModuleType:
    ctx.warmup.wait()
    if ctx.warmup.error is not None:
        raise internal_error(ctx.warmup.error)
    from . import services as loaded

    return loaded


def initialize(ctx: WorkerContext, client: Any = None, protocol_version: Any = None) -> dict[str, Any]:
    """Handshake: who this worker is, what it serves, and its limits."""
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
    }


def ping(ctx: WorkerContext) -> str:
    return "pong"


def shutdown(ctx: WorkerContext) -> None:
    """Reply, then exit 0 once the reply is written."""
    ctx.stop_requested = True


def fit(ctx: WorkerContext, graph: Any, traces: Any, config: Any = None) -> dict[str, Any]:
    # Checks are pure Python: a bad request is refused at once, even during warm-up.
    parsed_graph, columns, fit_config = requests.parse_fit_request(graph, traces, config, ctx.limits)
    ctx.progress("checking", 1, 1)  # after the checks: a refused fit's error is its first line
    if not ctx.warmup.done.is_set():
        ctx.progress("loading", 0, 1)  # DoWhy is still being imported (services waits for it)
    return services(ctx).fit(ctx, parsed_graph, columns, fit_config)  # type: ignore[no-any-return]


def batch_fit(ctx: WorkerContext, requests: Any, scheduler: Any, persist: Any = False,
              connect_timeout: Any = None) -> dict[str, Any]:
    """Fit many requests on a Dask cluster; this worker is its Dask client (cluster.py)."""
    from . import cluster

    return cluster.batch_fit(ctx, lambda: services(ctx), requests, scheduler, persist, connect_timeout)


def warmup(ctx: WorkerContext, timeout: Any = None) -> dict[str, Any]:
    """Wait (up to ``timeout`` seconds) for the start-up warm-up; say whether it succeeded."""
    seconds = None if timeout is None else requests.bounded_number(timeout, "timeout", 0, MAX_WAIT_S)
    ctx.warmup.done.wait(seconds)
    error = ctx.warmup.error
    return {
        "warm": ctx.warmup.done.is_set() and error is None,
        "seconds": ctx.warmup.seconds,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


def evaluate(ctx: WorkerContext, model_id: Any, traces: Any, invertibility: Any = False,
             falsify_graph: Any = False, max_permutations: Any = 50, seed: Any = None) -> dict[str, Any]:
    return services(ctx).evaluate(  # type: ignore[no-any-return]
        ctx, model_id, traces, invertibility, falsify_graph, max_permutations, seed
    )


def sample(
    ctx: WorkerContext,
    model_id: Any,
    kind: Any = "observational",
    interventions: Any = None,
    observed: Any = None,
    num_samples: Any = 1000,
    query_nodes: Any = None,
    seed: Any = None,
    return_samples: Any = True,
) -> dict[str, Any]:
    return services(ctx).sample(  # type: ignore[no-any-return]
        ctx, model_id, kind, interventions, observed, num_samples, query_nodes, seed, return_samples
    )


def effect(ctx: WorkerContext, model_id: Any, target: Any, alternative: Any, reference: Any = None,
           observed: Any = None, confidence: Any = None, num_samples: Any = None, num_bootstrap: Any = None,
           seed: Any = None) -> dict[str, Any]:
    return services(ctx).effect(  # type: ignore[no-any-return]
        ctx, model_id, target, alternative, reference, observed, confidence, num_samples, num_bootstrap, seed
    )


def arrow_strength(ctx: WorkerContext, model_id: Any, target: Any, num_samples_conditional: Any = None,
                   seed: Any = None) -> dict[str, Any]:
    return services(ctx).arrow_strength(ctx, model_id, target, num_samples_conditional, seed)  # type: ignore[no-any-return]


def influence(ctx: WorkerContext, model_id: Any, target: Any, num_training_samples: Any = None,
              num_samples_randomization: Any = None, num_samples_baseline: Any = None,
              seed: Any = None) -> dict[str, Any]:
    return services(ctx).influence(  # type: ignore[no-any-return]
        ctx, model_id, target, num_training_samples, num_samples_randomization, num_samples_baseline, seed
    )


def anomaly(ctx: WorkerContext, model_id: Any, target: Any, rows: Any, num_distribution_samples: Any = None,
            seed: Any = None) -> dict[str, Any]:
    return services(ctx).anomaly(ctx, model_id, target, rows, num_distribution_samples, seed)  # type: ignore[no-any-return]


def distribution_change(ctx: WorkerContext, model_id: Any, target: Any, old: Any, new: Any,
                        num_samples: Any = None, measure: Any = "mean", seed: Any = None) -> dict[str, Any]:
    return services(ctx).distribution_change(  # type: ignore[no-any-return]
        ctx, model_id, target, old, new, num_samples, measure, seed
    )


def report(ctx: WorkerContext, model_id: Any, format: Any = "html", samples: Any = None) -> dict[str, Any]:
    """The fitted model as a self-contained HTML or SVG document (report.py draws it)."""
    loaded = services(ctx)
    from .report import report as render

    return render(ctx, loaded, model_id, format, samples)


def models_list(ctx: WorkerContext) -> dict[str, Any]:
    """Every model this worker can serve, and where it lives: memory, disk or both."""
    return {"models": to_json(ctx.store.listing()), **ctx.store.usage()}


def models_drop(ctx: WorkerContext, model_id: Any) -> dict[str, Any]:
    return ctx.store.drop(model_id)


def models_save(ctx: WorkerContext, model_id: Any) -> dict[str, Any]:
    return ctx.store.save(model_id)


def models_load(ctx: WorkerContext, model_id: Any) -> dict[str, Any]:
    ctx.store.load(model_id)
    return {"model_id": model_id, "loaded": True}


def models_prune(ctx: WorkerContext, older_than_s: Any = None, max_total_mb: Any = None) -> dict[str, Any]:
    """Delete persisted models older than an age, then oldest first down to a total size."""
    age = None if older_than_s is None else requests.bounded_number(older_than_s, "older_than_s", 0, MAX_KNOB)
    size = None if max_total_mb is None else requests.bounded_number(max_total_mb, "max_total_mb", 0, MAX_KNOB)
    if age is None and size is None:
        raise invalid_params("older_than_s", "give older_than_s, max_total_mb or both")
    pruned = ctx.store.prune(age, None if size is None else int(size * 1024 * 1024))
    return {"pruned": pruned, **ctx.store.usage()}


def debug_sleep(ctx: WorkerContext, seconds: Any) -> float:
    slept = requests.bounded_number(seconds, "seconds", 0, 3600)
    time.sleep(slept)
    return slept


def debug_exit(ctx: WorkerContext, code: Any = 1) -> None:
    if isinstance(code, bool) or not isinstance(code, int):
        raise invalid_params("code", f"must be an integer, got {json_type(code)}")
    os._exit(code)


def debug_print(ctx: WorkerContext, text: Any, target: Any = "sys.stdout") -> str:
    """Print where a careless library would; none of it may reach the protocol."""
    if not isinstance(text, str):
        raise invalid_params("text", "must be a string")
    if target == "sys.stdout":
        print(text, flush=True)
    elif target == "fd1":
        os.write(1, text.encode() + b"\n")
    elif target == "stderr":
        print(text, file=sys.stderr, flush=True)
    else:
        raise invalid_params("target", "must be 'sys.stdout', 'fd1' or 'stderr'")
    return str(target)


def debug_raise(ctx: WorkerContext, message: Any = "boom") -> None:
    raise RuntimeError(str(message))


_PUBLIC: dict[str, Callable[..., Any]] = {
    "initialize": initialize,
    "ping": ping,
    "warmup": warmup,
    "shutdown": shutdown,
    "fit": fit,
    "batch.fit": batch_fit,
    "evaluate": evaluate,
    "sample": sample,
    "effect": effect,
    "arrow_strength": arrow_strength,
    "influence": influence,
    "anomaly": anomaly,
    "distribution_change": distribution_change,
    "report": report,
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
    return {name: rpc_method(handler) for name, handler in method_table(ctx).items()}

