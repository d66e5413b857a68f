"""The gateway of ``batch.fit``: the scm worker that receives it becomes the Dask client.

``distributed`` is imported only then, so a worker opens no network socket unless a
request names a scheduler. Each request is checked with ``fit``'s own declaration and
looked up in the fit cache here, exactly as ``fit`` does (a bad request is that item's
error, without a round trip); the rest become one task each (cluster.fit_task). Results
come back as they complete (a ``progress`` notification per item) and are returned in
input order.

Who the gateway talks to: the address passed dask_address's rules at the boundary
(``tls://``, or plain ``tcp://`` on loopback or with ``insecure``); dask_link builds
Dask's ``Security`` (the ``tls_*`` files, else Dask's configuration) and probes the peer
in bare msgpack before a ``distributed.Client``, which unpickles, is made.

Where a model lives: without ``persist`` the task returns the fitted model, the gateway
adds it to its own store and the result's ``model_id`` is sample-able at once (the same
memory limits as a local fit). With ``persist`` the Dask worker writes the model into the
gateway's store directory, which must be the same path on every node (a shared
filesystem); the store key travels through that directory, and any worker with ``--store``
on it can load the model later.

A Dask worker lost mid-batch is Dask's to reschedule. The scheduler logs a
``remove-worker`` event naming the tasks that worker was processing (or held results
of); the gateway subscribes to those events for the batch and reads the event log once
more at the end, so each item knows how many times it was started (``attempts``) and the
batch's metadata says ``rescheduled: true`` with the items and workers concerned. A task
that kills ``distributed.scheduler.allowed-failures`` workers is given up by Dask
(``KilledWorker``): that item's error, -32008.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .. import checks
from ..cluster import fit_task, worker_info
from ..context import WorkerContext
from ..engine.dask_address import parse
from ..engine.dask_link import Link, cluster_unavailable, link, require_scheduler
from ..errors import WorkerError, internal_error, invalid_params
from .signatures import FIT

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Job:
    index: int
    graph: checks.Graph
    columns: checks.Traces
    config: checks.FitConfig
    cache_key: str


class _Batch:
    """Items in input order; each finished item is announced with a progress notification."""

    def __init__(self, ctx: WorkerContext, total: int) -> None:
        self.ctx = ctx
        self.items: list[dict[str, Any] | None] = [None] * total
        self.done = 0

    def finish(self, index: int, outcome: dict[str, Any], attempts: int = 1) -> None:
        item = {"index": index, "attempts": attempts, **outcome}
        self.items[index] = item
        self.done += 1
        if self.ctx.current_request_id is not None:
            self.ctx.progress("batch", self.done, len(self.items), item=item)


class _Reschedules:
    """Tasks of this batch that a lost Dask worker was processing or holding."""

    def __init__(self, keys: dict[str, int]) -> None:
        self.keys = keys
        self.seen: dict[tuple[str, float], set[str]] = {}
        self._lock = threading.Lock()

    def event(self, event: Any) -> None:
        """Handler for the scheduler's ``all`` topic: (timestamp, message)."""
        try:
            timestamp, message = event
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        touched = {str(k) for field in ("processing-tasks", "lost-computed-tasks")
                   for k in message.get(field) or ()} & set(self.keys)
        with self._lock:
            self.seen[(str(message.get("worker")), float(timestamp))] = touched

    def attempts(self, key: str) -> int:
        with self._lock:
            return 1 + sum(key in touched for touched in self.seen.values())

    def summary(self) -> dict[str, Any]:
        with self._lock:
            touched = [(worker, keys) for (worker, _), keys in self.seen.items() if keys]
        items = sorted({self.keys[k] for _, keys in touched for k in keys})
        return {"rescheduled": bool(items), "rescheduled_items": items,
                "lost_workers": sorted({worker for worker, _ in touched})}


def batch_fit(
    ctx: WorkerContext,
    load_services: Callable[[], ModuleType],
    raw_items: list[Any],
    address: str,
    persist: bool,
    timeout: float,
    tls: dict[str, str | None],
) -> dict[str, Any]:
    """``batch.fit``, its params checked: fan the items out over the Dask cluster at ``address``.

    ``address`` passed dask_address.check (scheme, ``insecure``); ``tls`` holds the
    ``tls_*`` files, None where Dask's own configuration is to be used.
    """
    if persist and ctx.store.files is None:
        raise invalid_params(
            "persist",
            "this worker runs without a store (--no-store); persisted cluster "
            "fits need a store directory that every node can reach",
        )
    started = time.perf_counter()
    to = link(parse(address), tls)
    client = _connect(to, timeout)  # before the warm-up: an unreachable cluster fails fast
    try:
        workers = _check_workers(client, address, timeout)
        services = load_services()
        outcome = _Batch(ctx, len(raw_items))
        jobs: list[_Job] = []
        for index, raw in enumerate(raw_items):
            try:
                job, cached = _prepare(ctx, services, index, raw, persist)
            except WorkerError as exc:
                outcome.finish(index, {"error": exc.to_error_object()})
                continue
            if cached is not None:
                outcome.finish(index, {"result": cached})
            else:
                jobs.append(job)
        meta = (_run(ctx, services, client, address, jobs, outcome) if jobs
                else {"rescheduled": False, "rescheduled_items": [], "lost_workers": []})
    finally:
        client.close()
    return {
        "items": outcome.items,
        "metadata": {
            "scheduler": address,
            "workers": workers,
            "submitted": len(jobs),
            **meta,
            "seconds": round(time.perf_counter() - started, 3),
        },
    }


def _connect(to: Link, timeout: float) -> Any:
    """A Dask client for the scheduler ``to`` names, once the probe has shown it is one.

    -32008 naming the address within about twice ``timeout`` seconds otherwise.
    """
    import distributed

    address = to.address.uri
    try:
        require_scheduler(to, timeout)
        return distributed.Client(address, security=to.security, timeout=f"{timeout}s",
                                  set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise cluster_unavailable(
            address, f"Cluster unavailable: cannot reach the Dask scheduler at {address} "
            f"within {timeout:g} s ({exc})", "unreachable") from exc


def _check_workers(client: Any, address: str, timeout: float) -> int:
    """Wait for a first Dask worker; refuse workers that run other versions than this one."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        raise cluster_unavailable(
            address, f"Cluster unavailable: the Dask scheduler at {address} has no workers "
            f"(waited {timeout:g} s)", "no_workers") from exc
    infos = client.run(worker_info, on_error="return")
    ours = worker_info()
    broken = {
        w: f"{type(i).__name__}: {i}" for w, i in infos.items() if isinstance(i, BaseException)
    }
    if broken:
        raise cluster_unavailable(
            address,
            f"Cluster unavailable: Dask workers cannot run scm_worker ({broken}); start them "
            "from the worker environment with --preload scm_worker.cluster",
            "worker_setup",
            workers=broken,
        )
    other = {
        w: i
        for w, i in infos.items()
        if (i["scm_worker"], i["dowhy"]) != (ours["scm_worker"], ours["dowhy"])
    }
    if other:
        raise cluster_unavailable(
            address,
            f"Cluster unavailable: Dask workers run other versions than this worker "
            f"(scm_worker {ours['scm_worker']}, DoWhy {ours['dowhy']}): {other}",
            "version_mismatch",
            workers=other,
        )
    cold = sorted(w for w, i in infos.items() if not i["preloaded"])
    if cold:
        log.warning("Dask workers without --preload scm_worker.cluster (cold first fit): %s", cold)
    return len(infos)


def _prepare(ctx: WorkerContext, services: ModuleType, index: int, raw: Any,
             persist: bool) -> tuple[_Job, dict[str, Any] | None]:
    """The checks (``fit``'s declaration) and the cache lookup of ``fit``, with the same errors."""
    request = checks.require_dict(raw, f"requests[{index}]")
    given = FIT.bind(request, ctx.limits)
    graph, columns, config = given["graph"], given["traces"], given["config"]
    if persist:
        config = dataclasses.replace(config, persist=True)
    key, cached = services.fit_cache(ctx, graph, columns, config)
    return _Job(index, graph, columns, config, key), cached


def _run(ctx: WorkerContext, services: ModuleType, client: Any, address: str, jobs: list[_Job],
         outcome: _Batch) -> dict[str, Any]:
    """Submit one task per job; finish items as they complete; report reschedules."""
    import distributed

    token = uuid.uuid4().hex[:12]
    keys = {f"scm-fit-{token}-{job.index}": job.index for job in jobs}
    reschedules = _Reschedules(keys)
    client.subscribe_topic("all", reschedules.event)
    store_dir = str(ctx.store.files.directory.resolve()) if ctx.store.files is not None else None
    futures = {
        client.submit(fit_task, job.graph, job.columns, job.config, job.cache_key,
                      store_dir if job.config.persist else None, key=key, pure=False): job
        for key, job in zip(keys, jobs, strict=True)
    }
    try:
        for future in distributed.as_completed(list(futures), loop=client.loop):
            job = futures.pop(future)
            attempts = reschedules.attempts(str(future.key))
            outcome.finish(job.index, _item(ctx, services, address, future, job), attempts)
            future.release()
    finally:
        if futures:
            client.cancel(list(futures))
    _sweep_events(client, reschedules)
    for key, index in keys.items():
        item = outcome.items[index]
        if item is not None:
            item["attempts"] = reschedules.attempts(key)
    return reschedules.summary()


def _item(
    ctx: WorkerContext, services: ModuleType, address: str, future: Any, job: _Job
) -> dict[str, Any]:
    """One completed task as ``{"result"}`` or ``{"error"}``; a model comes home to this store."""
    if future.status == "cancelled":
        return {
            "error": cluster_unavailable(
                address,
                f"Cluster unavailable: the task of item {job.index} was cancelled "
                f"(scheduler {address} lost?)",
                "cancelled",
            ).to_error_object()
        }
    if future.status == "error":
        return {"error": _task_exception(address, job, future.exception()).to_error_object()}
    try:
        done = future.result()
    except Exception as exc:  # noqa: BLE001 - not fetched (lost with its worker, cancelled): an item error
        return {"error": _task_exception(address, job, exc).to_error_object()}
    where = done.get("worker")
    if "error" in done:
        return {"error": done["error"]}
    try:
        if "model" in done:
            model_id = ctx.store.add(done["model"], cache_key=job.cache_key)
            result = services.fit_outcome(model_id, done["model"], job.config, cache_hit=False,
                                          ignored=job.columns.ignored)
        else:  # made on the Dask worker, whose columns are the nodes' only
            result = services.note_extra_columns(done["result"], job.columns.ignored)
    except WorkerError as exc:
        return {"error": exc.to_error_object()}
    result["metadata"]["dask_worker"] = where
    return {"result": result}


def _task_exception(address: str, job: _Job, exc: BaseException) -> WorkerError:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return cluster_unavailable(
            address,
            f"Cluster unavailable: Dask gave up on item {job.index}: the workers running it died "
            f"({exc})",
            "killed_worker",
        )
    return internal_error(exc)


def _sweep_events(client: Any, reschedules: _Reschedules) -> None:
    """Read the scheduler's event log once more: a subscription may lag behind the results."""
    try:
        client.unsubscribe_topic("all")
        for event in client.get_events("all"):
            reschedules.event(event)
    except Exception:  # the results are in; this only refines the metadata
        log.warning("could not read the Dask scheduler's event log", exc_info=True)
