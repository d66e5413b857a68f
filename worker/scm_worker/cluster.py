"""What runs on the Dask workers of a ``batch.fit``: the preload and the fit task.

On every node, from the worker environment (Python 3.11, the same pins)::

    dask worker tls://SCHEDULER:8786 --nthreads 1 --preload scm_worker.cluster \
        --tls-ca-file ca.pem --tls-cert node.pem --tls-key node.key

(TLS: Dask moves pickles, and the gateway takes plain ``tcp://`` off loopback only with
``insecure``; see dask_address.py.)

``dask_setup`` runs before the Dask worker registers with the scheduler: it sets the
thread budget (one BLAS/OpenMP thread, one joblib job), imports DoWhy and the model
stack and pays a tiny seeded fit, so no task lands on a cold process. ``fit_task`` is
the task. It runs ``services.fit_columns``, the very function the worker's own ``fit``
runs (split, select, fit, score, summarise), with ``n_jobs=1``; a seeded request
therefore gives the same model on the cluster as on a local one-thread worker. The
scm worker that sends the tasks is in gateway.py.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from . import __version__, checks
from .columns import Column
from .errors import CLUSTER_UNAVAILABLE, WorkerError, internal_error
from .versions import dowhy_version, python_version

log = logging.getLogger(__name__)

_setup_lock = threading.Lock()
_configured = False
#: DoWhy draws from numpy's global RNG: one fit at a time per process keeps seeds exact
#: even on a Dask worker started with more than one thread.
_fit_lock = threading.Lock()


# -- the Dask worker side -------------------------------------------------------------


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: thread budget, DoWhy imported and warm, before registering."""
    started = time.monotonic()
    configure(warm=True)
    nthreads = getattr(getattr(worker, "state", None), "nthreads", 1)
    if nthreads != 1:
        log.warning(
            "this Dask worker has %s threads; fits run one at a time (start it with --nthreads 1 "
            "and more processes, e.g. --nworkers N, to use more cores)",
            nthreads,
        )
    log.info("scm_worker %s ready for Dask in %.1fs", __version__, time.monotonic() - started)


def configure(warm: bool = False) -> None:
    """One thread per fit (BLAS, OpenMP, joblib), DoWhy loaded, progress bars off. Idempotent."""
    global _configured
    with _setup_lock:
        if _configured:
            return
        from threadpoolctl import threadpool_limits

        from .engine.warmup import configure_dowhy, limit_threads, tiny_fit

        limit_threads(1)

        threadpool_limits(limits=1)  # for the process, not a context: numpy is loaded already
        configure_dowhy(1)
        if warm:
            tiny_fit(1)
        _configured = True


def worker_info() -> dict[str, Any]:
    """What a Dask worker runs; the gateway checks it against its own before a batch."""
    return {"scm_worker": __version__, "dowhy": dowhy_version(), "python": python_version(),
            "preloaded": _configured}


def fit_task(
    graph: checks.Graph,
    columns: dict[str, Column],
    config: checks.FitConfig,
    key: str,
    store_dir: str | None,
) -> dict[str, Any]:
    """One checked fit request on a Dask worker, with one thread.

    Returns ``{"model"}`` (the gateway stores it), ``{"result"}`` (persisted here, in
    ``store_dir``) or ``{"error"}``: a WorkerError comes back as its JSON-RPC error object,
    the same code, message and data a local ``fit`` gives, never as an exception.
    """
    where = _dask_worker_address()
    try:
        configure()
        from .engine import services

        with _fit_lock:
            kept = kept_models()
            reuse = kept.reusable if config.cache else None  # a "fresh fit" reuses nothing
            model = services.fit_columns(graph, columns, config, 1, reuse=reuse)
            kept.add(model)
        if store_dir is None:
            return {"model": model, "worker": where}
        model_id = _persist(model, key, Path(store_dir), where)
        return {
            "result": services.fit_outcome(model_id, model, config, cache_hit=False),
            "worker": where,
        }
    except WorkerError as exc:
        return {"error": exc.to_error_object(), "worker": where}
    except Exception as exc:
        log.exception("fit task failed")
        return {"error": internal_error(exc).to_error_object(), "worker": where}


#: what one Dask worker keeps of the models it fitted, in memory: later items of a batch
#: that share nodes with them (many graphs over the same traces) reuse those nodes
KEPT_MODELS = 8
KEPT_BYTES = 512 * 2**20
_kept: Any = None


def kept_models() -> Any:
    """This Dask worker's own model store, memory only, within ``KEPT_*``: the local worker's
    rule for reusing nodes (engine/node_reuse.py), so an item fitted after another on the
    same Dask worker fits only the nodes whose inputs differ. Called under ``_fit_lock``."""
    global _kept
    if _kept is None:
        from .engine.store import ModelStore

        _kept = ModelStore(KEPT_MODELS, KEPT_BYTES)
    return _kept


def _persist(model: Any, key: str, directory: Path, where: str | None) -> str:
    from .engine.store import ModelStore

    try:
        return ModelStore(1, None, directory).add(model, persist=True, cache_key=key)
    except OSError as exc:
        raise WorkerError(
            CLUSTER_UNAVAILABLE,
            f"Dask worker {where} cannot write the model store {directory}: {exc}",
            {"reason": "store_unreachable", "store_dir": str(directory), "worker": where},
        ) from exc


def _dask_worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None
