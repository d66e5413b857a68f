"""Each non-root node's whole fit as one task, run node-parallel.

Given the data, nodes are independent: a node's mechanism is chosen from its own
parents' columns, fitted on the training rows, scored on the held-out rows and refitted
on all rows without looking at any other node. ``gcm.auto.assign_causal_mechanisms`` and
``gcm.fit`` walk the nodes one after another and keep about one core busy; here every
non-root node is one joblib task (loky processes, one thread each, so processes ×
threads stays within the worker's budget), and the tasks are balanced by joblib's queue
with no barrier between selection and fitting.

Each task seeds the global RNG from its own node seed before every step, so a seeded
fit makes the same choices and the same fits at any concurrency.
"""

from __future__ import annotations

import copy
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from dowhy import gcm
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from .. import fast
from ..cancellation import NEVER, CancelToken
from ..fast import lean_grower
from ..fast.selection import Candidate
from ..mechanism_specs import MechanismSpec
from .dowhy_api import seed_global
from .hand_set import hand_set_choice
from .mechanism_choice import Override, Quality, choose_mechanism
from .mechanisms import predict

T = TypeVar("T")


def node_seed(seed: int, node: str) -> int:
    """The seed of the node named ``node``: the same at any concurrency and in any graph.

    Derived from the node's name, not its place in the graph, so adding an edge or a node
    elsewhere leaves every other node's seed (and so its fit) as it was: what lets an
    incremental fit reuse nodes (node_reuse.py). A stable digest of the name, never
    Python's salted ``hash``.
    """
    name = int.from_bytes(hashlib.sha256(node.encode()).digest()[:8], "big")
    return int(np.random.SeedSequence([seed, name]).generate_state(1)[0])


@dataclass(frozen=True)
class NodeTask:
    """What one node's fit needs: its parents' columns and its own, per split."""

    node: str
    seed: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    X_all: np.ndarray
    y_all: np.ndarray
    spec: MechanismSpec | None = None  # set by the user: no model selection


@dataclass(frozen=True)
class NodeFit:
    node: str
    mechanism: Any  # fitted on all rows: what the stored model keeps
    candidates: list[Candidate]
    val_predicted: np.ndarray  # from the mechanism fitted on the training rows
    seconds: float  # the whole task's wall time in the process that ran it
    fast_paths: tuple[str, ...] = ()  # the fast paths in place in the process that ran it
    override: Override | None = None  # what the opt-in parsimony rule overrode, if anything


def processes(count: int, n_jobs: int) -> int:
    """How many processes ``fit_nodes`` fits ``count`` nodes in: joblib's, or this one."""
    return n_jobs if n_jobs > 1 and count > 1 else 1


def fit_nodes(
    tasks: Iterable[NodeTask],
    count: int,
    quality: Quality,
    linear_tolerance: float,
    n_jobs: int,
    cancel: CancelToken = NEVER,
) -> Iterator[NodeFit]:
    """Yields each of the ``count`` nodes' fits as it finishes (any order), until cancelled.

    One task per batch and no more dispatched than there are processes: joblib's
    defaults (auto batching, ``2 * n_jobs`` pre-dispatched) would copy several nodes'
    columns per process at once (the memory bound of ``node_tasks`` counts on few).
    In this process (``n_jobs`` 1) a cancel stops the fit between two nodes.
    """
    if processes(count, n_jobs) == 1:
        return (fit_node(task, quality, linear_tolerance) for task in tasks)
    return collected(lambda: Parallel(
        n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs"
    )(delayed(fit_node)(task, quality, linear_tolerance) for task in tasks), cancel)


#: how often the compute thread, waiting for a node's fit, looks at its cancel flag
POLL_S = 0.05


def collected(run: Callable[[], Iterable[T]], cancel: CancelToken) -> Iterator[T]:
    """joblib's results (node fits, bootstrap replicates), read by a thread of their own,
    so that a cancel need not wait.

    The compute thread waits on a queue and looks at the cancel flag every ``POLL_S``;
    once cancelled it stops at once, and the collector lets the node tasks still running
    finish, dropping their results. Closing joblib's generator instead would abort it,
    and aborting kills loky's warm processes. Those tasks draw from their own process's
    random state, so the request that follows shares nothing with them.
    """
    results: queue.Queue[tuple[str, Any]] = queue.Queue()

    def collect() -> None:
        try:
            for node_fit in run():
                results.put(("fit", node_fit))
        except Exception as exc:  # noqa: BLE001 - re-raised in the compute thread, unless it left
            results.put(("error", exc))
        results.put(("end", None))

    threading.Thread(target=collect, name="scm-node-results", daemon=True).start()
    while True:
        try:
            kind, value = results.get(timeout=POLL_S)
        except queue.Empty:
            if cancel.requested:
                return
            continue
        if kind == "end":
            return
        if kind == "error":
            raise value
        yield value


def fit_node(task: NodeTask, quality: Quality, linear_tolerance: float) -> NodeFit:
    """Select, fit on train, predict the held-out rows, refit on all rows: one thread."""
    started = time.perf_counter()
    install_fast_grower()  # loky's processes run node tasks without configure_dowhy
    with single_threaded():
        seed_global(task.seed)
        choice = (
            hand_set_choice(task.spec, task.y_train) if task.spec is not None
            else choose_mechanism(task.X_train, task.y_train, quality, linear_tolerance)
        )
        on_all_rows = copy.deepcopy(choice.mechanism)
        on_train_rows = choice.mechanism
        seed_global(task.seed)
        on_train_rows.fit(X=task.X_train, Y=task.y_train)
        val_predicted = predict(on_train_rows, task.X_val)
        seed_global(task.seed)
        on_all_rows.fit(X=task.X_all, Y=task.y_all)
    seconds = time.perf_counter() - started
    return NodeFit(
        task.node, on_all_rows, choice.candidates, val_predicted, seconds, fitting_fast_paths(),
        choice.override,
    )


def install_fast_grower() -> None:
    """The lean tree grower in this process where the gate opens it; sklearn's own otherwise."""
    if fast.enabled("lean_grower"):
        lean_grower.install()


def fitting_fast_paths() -> tuple[str, ...]:
    """The fast paths a node fit in this process runs through: the pruned selection where
    the gate opens it, and the lean grower where it is really in place (not merely allowed)."""
    paths = ["pruned_selection"] if fast.enabled("pruned_selection") else []
    if lean_grower.installed():
        paths.append("lean_grower")
    return tuple(paths)


@contextmanager
def single_threaded() -> Iterator[None]:
    """One thread for DoWhy's joblib and for BLAS/OpenMP, restored afterwards.

    Restoring matters when the task runs in the worker's own process (``--threads 1``, or
    a single node): later requests keep the worker's configured ``n_jobs``.
    """
    previous = gcm.config.default_n_jobs
    gcm.config.set_default_n_jobs(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        gcm.config.set_default_n_jobs(previous)
