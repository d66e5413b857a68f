"""WorkerPool on a Dask cluster: one ``batch.fit`` to the pool's first worker, the gateway.

The 3.13 client never talks to Dask: its local worker (Python 3.11, like the cluster) is
the Dask client. Requests are shaped for the wire here, as ``Worker.fit`` shapes them (a
request that cannot be shaped is that item's error); the gateway checks them, fans them
out, and announces each finished item with a ``progress`` notification, which this
call's own progress callback turns into ``on_progress(done, total, item)``. A failure
of the batch as a whole (the scheduler unreachable: ``ClusterUnavailable``; the gateway
dying: ``WorkerCrashed``) is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ._wire import fit_params
from .errors import RemoteError, WorkerError
from .pool import BatchItem, BatchProgress
from .results import FitResult
from .worker import Worker


def fit_on_cluster(
    gateway: Worker,
    scheduler: str,
    requests: list[Mapping[str, Any]],
    on_progress: BatchProgress | None,
    security: Mapping[str, Any] | None = None,
) -> tuple[list[BatchItem], dict[str, Any]]:
    """(items in input order, the batch's metadata) for ``requests`` fitted on ``scheduler``.

    ``security``: ``batch.fit``'s ``insecure`` and ``tls_*`` params (pool.security_params).
    """
    items: list[BatchItem | None] = [None] * len(requests)
    wire: list[dict[str, Any]] = []
    positions: list[int] = []  # wire position → input index
    lock = threading.Lock()
    done = 0

    def report(item: BatchItem) -> None:
        nonlocal done
        with lock:
            done += 1
            count = done
        if on_progress is not None:
            on_progress(count, len(requests), item)

    def refused(index: int, error: WorkerError) -> BatchItem:
        item = BatchItem(index, None, error)
        items[index] = item
        return item

    for index, request in enumerate(requests):
        try:
            wire.append(request_to_wire(request))
            positions.append(index)
        except WorkerError as exc:
            report(refused(index, exc))
        except (KeyError, TypeError, ValueError) as exc:
            report(refused(index, WorkerError(f"request {index} is malformed: {exc!r}")))

    def from_wire(entry: dict[str, Any]) -> BatchItem:
        index = positions[entry["index"]]
        attempts = int(entry.get("attempts", 1))
        if "error" in entry:
            return BatchItem(index, None, RemoteError.from_error(entry["error"]), attempts)
        return BatchItem(index, FitResult.from_wire(entry["result"]), None, attempts)

    def on_batch_progress(params: dict[str, Any]) -> None:
        entry = params.get("item")
        if params.get("stage") == "batch" and isinstance(entry, dict):
            report(from_wire(entry))
        elif gateway.on_progress is not None:
            gateway.on_progress(params)

    metadata: dict[str, Any] = {"scheduler": scheduler, "submitted": 0}
    if wire:
        # The whole batch is one call: a per-request timeout does not apply to it. Its
        # progress goes to this call's callback, so other threads' calls keep their own.
        params = {"requests": wire, "scheduler": scheduler, **(security or {})}
        reply = gateway.call("batch.fit", params, timeout=None, on_progress=on_batch_progress)
        for entry in reply["items"]:
            item = from_wire(entry)
            items[item.index] = item
        metadata = reply["metadata"]
    return [item for item in items if item is not None], metadata


def request_to_wire(request: Mapping[str, Any]) -> dict[str, Any]:
    """``{"graph", "traces", "config"?}`` shaped as ``Worker.fit`` sends it."""
    return fit_params(request["graph"], request["traces"], request.get("config") or {})
