"""WorkerPool: several warm workers behind one queue, for fitting many graphs.

Work is balanced by a shared queue (a free worker takes the next request), not
round-robin, so one slow graph never holds back the rest. Each worker gets
``cores // size`` threads so processes × threads stays within the machine's cores:
oversubscribed DoWhy (joblib plus OpenMP in every process) runs many times slower.
One bad request gives that item an error, never a failed batch; a worker that dies
mid-item is restarted and the item sent again once: the Worker's own retry policy
(``crash_retries=1`` unless the pool's caller sets it; 0 on a cluster).

With ``scheduler="tls://host:8786"`` the same ``fit_many`` runs on a Dask cluster
instead: one ``batch.fit`` to the pool's first worker, which is the Dask client
(``_cluster.py``; the worker side is ``scm_worker.gateway``). ``tls_ca_file``,
``tls_cert`` and ``tls_key`` name the cluster's CA and this client's certificate (else
Dask's own TLS configuration applies); a plain ``tcp://`` scheduler off this machine
needs ``insecure=True``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from .errors import WorkerError
from .results import FitResult
from .worker import Worker


@dataclass(frozen=True)
class BatchItem:
    """One request's outcome: a FitResult or the error it met (never both)."""

    index: int
    result: FitResult | None
    error: WorkerError | None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


BatchProgress = Callable[[int, int, BatchItem], None]


def security_params(insecure: bool, *files: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``{"insecure"?, "tls_ca_file"?, "tls_cert"?, "tls_key"?}`` as ``batch.fit`` takes them.

    Paths are made absolute here: the worker (a daemon, perhaps) has another working directory.
    """
    names = ("tls_ca_file", "tls_cert", "tls_key")
    params: dict[str, Any] = {name: os.path.abspath(os.path.expanduser(os.fspath(path)))
                              for name, path in zip(names, files, strict=True) if path is not None}
    if insecure:
        params["insecure"] = True
    return params


def threads_per_worker(size: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // size)


class WorkerPool:
    def __init__(
        self,
        size: int | None = None,
        *,
        python: str | None = None,
        threads: int | None = None,
        worker_args: Sequence[str] = (),
        scheduler: str | None = None,
        insecure: bool = False,
        tls_ca_file: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        **worker_options: Any,
    ) -> None:
        #: a Dask scheduler address: fit_many then runs on that cluster, through the first
        #: worker (the gateway, which fits nothing itself: one worker, one thread by default)
        self.scheduler = scheduler
        #: batch.fit's security params: ``insecure`` and the ``tls_*`` files, made absolute
        self.scheduler_params = security_params(insecure, tls_ca_file, tls_cert, tls_key)
        self.last_batch: dict[str, Any] | None = None
        self.size = size or (1 if scheduler else os.cpu_count() or 1)
        self.threads = threads or (1 if scheduler else threads_per_worker(self.size))
        args = ("--threads", str(self.threads), *worker_args)
        # a crashed item is sent again once; not a whole cluster batch (the gateway's death
        # is raised, as _cluster.py says)
        worker_options.setdefault("crash_retries", 0 if scheduler else 1)
        self.workers = [Worker(python, worker_args=args, **worker_options)
                        for _ in range(self.size)]

    def start(self) -> None:
        """Start every worker at once (each pays its warm-up in parallel)."""
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_start_into, args=(w, errors)) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def fit_many(
        self, requests: Iterable[Mapping[str, Any]], on_progress: BatchProgress | None = None
    ) -> list[BatchItem]:
        """Fit every ``{"graph", "traces", "config"?}`` request; results in input order."""
        items = list(requests)
        if self.scheduler is not None:
            from ._cluster import fit_on_cluster

            done, self.last_batch = fit_on_cluster(self.workers[0], self.scheduler, items,
                                                   on_progress, self.scheduler_params)
            return done
        todo: queue.SimpleQueue[tuple[int, Mapping[str, Any]]] = queue.SimpleQueue()
        for index in largest_first(items):
            todo.put((index, items[index]))
        results: list[BatchItem | None] = [None] * len(items)
        lock = threading.Lock()
        finished = 0

        def record(item: BatchItem) -> None:
            nonlocal finished
            with lock:
                results[item.index] = item
                finished += 1
                done = finished
            if on_progress is not None:
                on_progress(done, len(items), item)

        runners = [threading.Thread(target=_drain, args=(w, todo, record)) for w in self.workers]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Ask every worker to stop first, then reap them in parallel, not one by one."""
        closing = [(worker, worker.begin_close()) for worker in self.workers]
        reapers = [threading.Thread(target=worker.finish_close, args=(stopping,))
                   for worker, stopping in closing if stopping is not None]
        for reaper in reapers:
            reaper.start()
        for reaper in reapers:
            reaper.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def largest_first(requests: Sequence[Mapping[str, Any]]) -> list[int]:
    """Request indices, the most expected work first (ties in input order).

    The batch ends when its last item does; with the big items handed out first, the
    last ones are small and no worker idles long while another finishes a big graph.
    """
    return sorted(range(len(requests)), key=lambda i: -expected_work(requests[i]))


def expected_work(request: Mapping[str, Any]) -> int:
    """Non-root nodes × rows: a fit's cost is one model selection per non-root node.

    Only an ordering hint: a malformed request scores 0 and gets its error in turn.
    """
    try:
        children = {edge[1] for edge in request["graph"].get("edges", [])}
        column: Any = next(iter(request["traces"].values()), [])
        return len(children) * _rows(column)
    except (AttributeError, IndexError, KeyError, TypeError):
        return 0


def _rows(column: Any) -> int:
    """A column's length: a list or array as is, a binary column from its base64 text."""
    if isinstance(column, Mapping):
        return len(column.get("data", "")) * 3 // 4 // 8  # 8 bytes a value is near enough
    return len(column)


def _start_into(worker: Worker, errors: list[BaseException]) -> None:
    try:
        worker.start()
    except BaseException as exc:  # noqa: BLE001 - re-raised by start()
        errors.append(exc)


def _drain(
    worker: Worker,
    todo: queue.SimpleQueue[tuple[int, Mapping[str, Any]]],
    record: Callable[[BatchItem], None],
) -> None:
    while True:
        try:
            index, request = todo.get_nowait()
        except queue.Empty:
            return
        record(fit_one(worker, index, request))


def fit_one(worker: Worker, index: int, request: Mapping[str, Any]) -> BatchItem:
    """Fit one request; a crash is retried by the Worker (``crash_retries``), and
    ``attempts`` counts its sendings (this thread is the worker's only caller)."""
    retried = worker.retries
    try:
        config = dict(request.get("config") or {})
        fitted = worker.fit(request["graph"], request["traces"], **config)
        return BatchItem(index, fitted, None, 1 + worker.retries - retried)
    except WorkerError as exc:
        return BatchItem(index, None, exc, 1 + worker.retries - retried)
    except (KeyError, TypeError, ValueError) as exc:
        error = WorkerError(f"request {index} is malformed: {exc!r}")
        return BatchItem(index, None, error)
