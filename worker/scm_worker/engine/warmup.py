"""Warm-up: import DoWhy and start joblib's worker pool before the first fit arrives.

DoWhy's first model selection in a process spawns loky workers and costs seconds; a
tiny seeded fit on synthetic data pays that at start-up, in a background thread, while
the protocol loop already answers the handshake.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Final

from ..context import WorkerContext

log = logging.getLogger(__name__)

#: what BLAS, OpenMP and joblib read for their thread counts
THREAD_VARS: Final = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "LOKY_MAX_CPU_COUNT",
)


def limit_threads(threads: int) -> None:
    """The thread budget, through the environment: must run before numpy is imported
    for OpenBLAS/OpenMP to honour it (and joblib's processes inherit it)."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def start_warmup(ctx: WorkerContext, enabled: bool) -> threading.Thread:
    thread = threading.Thread(target=_warm, args=(ctx, enabled), name="warmup", daemon=True)
    thread.start()
    return thread


def _warm(ctx: WorkerContext, enabled: bool) -> None:
    started = time.monotonic()
    try:
        configure_dowhy(ctx.threads)
        if enabled:
            tiny_fit(ctx.n_jobs)
    except BaseException as exc:
        log.exception("warm-up failed")
        ctx.warmup.finish(started, exc)
        return
    ctx.warmup.finish(started)
    log.info("warm-up done in %.2fs", ctx.warmup.seconds)


def configure_dowhy(threads: int | None) -> None:
    from dowhy import gcm

    from .. import fast
    from . import services  # noqa: F401 - import the whole model stack now
    from .node_fitting import install_fast_grower

    fast.states()  # the gate decides (and logs a closed path) once, here
    install_fast_grower()
    gcm.config.disable_progress_bars()
    if threads is not None:
        gcm.config.set_default_n_jobs(threads)


def tiny_fit(n_jobs: int) -> None:
    import numpy as np

    from ..checks import FitConfig, Graph
    from ..columns import Column
    from .fitting import fit_model
    from .frames import to_frame

    rng = np.random.RandomState(0)
    x = rng.normal(size=200)
    y = 2 * x + rng.normal(scale=0.1, size=200)
    z = np.sin(x) + rng.normal(scale=0.1, size=200)
    columns = {name: Column("numeric", v) for name, v in {"x": x, "y": y, "z": z}.items()}
    graph = Graph(("x", "y", "z"), (("x", "y"), ("x", "z")))  # two selections: every process starts
    fit_model(graph, to_frame(columns), FitConfig(seed=0), n_jobs)
