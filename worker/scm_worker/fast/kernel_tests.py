"""DoWhy's kernel independence tests within one query, computed side by side.

``gcm.distribution_change`` first tests every node of the target's subgraph for a
changed mechanism, one node after another. Each test is one joblib task (a conditional
KCI test on 1000 rows takes about a second here), so one core works while the other
waits, and the tests are most of the query's time. They do not depend on one another,
only on the data and on the global RNG's draws made before each, so they can run two at
a time provided every draw is made as DoWhy makes it. ``side_by_side`` does that in
three steps, through the test functions the query accepts as parameters:

1. **Record.** Each test call makes ``kernel_based``'s own draws, by calling it on a
   constant ``X`` of the same shape (which its evaluation answers at once), and keeps its
   inputs and the RNG state before and after. The last expected call stops the query.
2. **Compute.** The recorded tests run as parallel joblib tasks, each one from its own
   RNG state before, through ``kernel_based`` itself.
3. **Replay.** From the same starting RNG state the query runs again. A call whose RNG
   state and inputs equal the recorded ones gets its p-value and leaves the RNG where
   the real test would have left it. Any other call runs ``kernel_based`` itself.

Why the answers are DoWhy's exactly: with more than one joblib process (the only case
handled here), ``kernel_based`` draws its row subsets and its task seed in the calling
process, from the row count alone, and then evaluates in a loky process whose seeding
never touches the caller's RNG. So the recorded "after" state is the real test's, and a
computed p-value is the one DoWhy's own task returns: the same rows, the same seed, the
same one thread per loky process (joblib gives each process cores // processes).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from dowhy.gcm.independence_test.kernel import kernel_based
from joblib import Parallel, delayed, effective_n_jobs

log = logging.getLogger(__name__)

T = TypeVar("T")
#: what DoWhy calls: ``test(X, Y)`` unconditional, ``test(X, Y, Z)`` conditional
Test = Callable[..., float]
#: ``np.random.get_state()``: ('MT19937', keys, position, has_gauss, cached_gaussian)
RngState = Any


@dataclass(frozen=True)
class TestCall:
    """One call DoWhy made to its kernel test: inputs, and the global RNG around it."""

    inputs: tuple[np.ndarray | None, ...]  # X, Y, Z (None when unconditional)
    before: RngState
    after: RngState

    def matches(self, inputs: tuple[np.ndarray | None, ...], state: RngState) -> bool:
        return _same_state(state, self.before) and all(
            (a is None and b is None) or (a is not None and b is not None and _same_array(a, b))
            for a, b in zip(inputs, self.inputs, strict=True)
        )


class _AllRecorded(Exception):
    """Stops the recording run once the last expected test call is recorded."""


def side_by_side(query: Callable[[Test], T], calls: int, n_jobs: int | None) -> T:
    """``query(test)``, with its ``calls`` kernel tests computed ``n_jobs`` at a time.

    ``query`` must pass ``test`` to DoWhy as its (conditional) independence test and be
    deterministic given the global RNG. With one process, or fewer than two calls, the
    query simply runs with ``kernel_based``.
    """
    if calls < 2 or effective_n_jobs(n_jobs) < 2:
        return query(kernel_based)
    start = (np.random.get_state(), random.getstate())
    started = time.perf_counter()
    try:
        recorded = _record(query, calls)
    except Exception:  # noqa: BLE001 - DoWhy's own error: the plain run raises it again
        _restore(start)
        return query(kernel_based)
    p_values = _compute(recorded, n_jobs)
    log.debug("%d kernel tests side by side in %.2fs", len(recorded), time.perf_counter() - started)
    _restore(start)
    return query(_Replay(recorded, p_values))


def _restore(state: tuple[RngState, Any]) -> None:
    np.random.set_state(state[0])
    random.setstate(state[1])


def _record(query: Callable[[Test], Any], calls: int) -> list[TestCall]:
    recorded: list[TestCall] = []

    def recorder(X: np.ndarray, Y: np.ndarray, Z: np.ndarray | None = None) -> float:
        before = np.random.get_state()
        kernel_based(np.zeros(np.shape(X)), Y, Z)  # the same draws; a constant X answers 1.0
        recorded.append(TestCall((X, Y, Z), before, np.random.get_state()))
        if len(recorded) == calls:
            raise _AllRecorded
        return 1.0

    try:
        query(recorder)
    except _AllRecorded:
        pass
    return recorded


def _compute(recorded: list[TestCall], n_jobs: int | None) -> list[float]:
    """The recorded tests' p-values, in parallel joblib processes."""
    p_values = Parallel(n_jobs=n_jobs)(
        delayed(_test_from_state)(call.before, *call.inputs) for call in recorded
    )
    return [float(p) for p in p_values]


def _test_from_state(
    state: RngState, X: np.ndarray, Y: np.ndarray, Z: np.ndarray | None
) -> float:
    """In a joblib process: the test DoWhy would run from this RNG state (its draws, its task)."""
    np.random.set_state(state)
    return float(kernel_based(X, Y, Z, bootstrap_n_jobs=1))


class _Replay:
    """The query's test function on the second run: the recorded answers, in order."""

    def __init__(self, recorded: list[TestCall], p_values: list[float]) -> None:
        self.answers = list(zip(recorded, p_values, strict=True))
        self.calls = 0

    def __call__(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray | None = None) -> float:
        index, self.calls = self.calls, self.calls + 1
        if index < len(self.answers):
            call, p_value = self.answers[index]
            if call.matches((X, Y, Z), np.random.get_state()):
                np.random.set_state(call.after)
                return p_value
            log.warning("kernel test %d differs from its recording: testing it here", index)
            del self.answers[index:]  # the RNG has left the recorded path
        return float(kernel_based(X, Y, Z))


def _same_state(a: RngState, b: RngState) -> bool:
    return bool(a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:]))


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))
