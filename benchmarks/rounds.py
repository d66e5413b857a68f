"""The one rule every benchmark target is judged by, and the paired rounds it is judged on.

A ratio measured once moves with the machine's load: the 100-node fit went from a 0.34×
miss to a 0.31× pass across a commit that only moved code. So each target is measured in
paired rounds (the baseline and the worker back to back, their order alternating between
rounds, so a slow stretch of the machine hits both sides alike), and judged on the MEDIAN
of the per-round ratios with their spread (min–max). A target inside that spread is
"within noise": the run cannot tell a pass from a miss. ``judge`` is pure (unit-tested in
tests/client/test_bench_rounds.py); ``paired`` is the only place that orders the sides.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: fewer paired rounds than this are a smoke run, never a verdict
MIN_ROUNDS = 5


@dataclass(frozen=True)
class Target:
    """A bound on a ratio: ``lower`` means the ratio must be at most ``bound``."""

    bound: float
    better: str = "lower"

    def __str__(self) -> str:
        return f"{'≤' if self.better == 'lower' else '≥'} {self.bound:.3g}×"


@dataclass(frozen=True)
class Judged:
    median: float
    low: float
    high: float
    rounds: int
    verdict: str  # met | missed | within noise | info | not a result


def judge(ratios: Sequence[float], target: Target | None, min_rounds: int = MIN_ROUNDS) -> Judged:
    """The verdict on per-round ratios: the median against the target, unless the target
    lies inside the spread (within noise) or there were too few rounds (not a result)."""
    if not ratios:
        raise ValueError("no rounds to judge")
    median, low, high = statistics.median(ratios), min(ratios), max(ratios)
    if target is None:
        verdict = "info"
    elif len(ratios) < min_rounds:
        verdict = "not a result"
    elif low <= target.bound <= high:
        verdict = "within noise"
    elif (median <= target.bound) == (target.better == "lower"):
        verdict = "met"
    else:
        verdict = "missed"
    return Judged(median, low, high, len(ratios), verdict)


def ratios(worker: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-round worker/baseline."""
    return [w / b for w, b in zip(worker, baseline, strict=True)]


def paired(rounds: int, sides: Mapping[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Run every side once per round, in the given order on even rounds and reversed on odd
    ones; each side gets the round's index (its seed) and returns its seconds."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for index in range(rounds):
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for name in order:
            times[name].append(sides[name](index))
    return times


def clock(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} µs"


def row(measure: str, baseline: Sequence[float], worker: Sequence[float],
        target: Target | None, min_rounds: int = MIN_ROUNDS) -> str:
    """One markdown table row: both sides' medians, the ratio's median (spread), the verdict."""
    found = judge(ratios(worker, baseline), target, min_rounds)
    return (f"| {measure} | {fmt_s(statistics.median(baseline))} "
            f"| {fmt_s(statistics.median(worker))} "
            f"| {found.median:.3g}× ({found.low:.3g}–{found.high:.3g}, {found.rounds} rounds) "
            f"| {target or 'info'} | {found.verdict} |")


TABLE = [("| measure | baseline (median) | scm-worker (median) "
          "| worker/baseline: median (min–max) | target | verdict |"), "|---|---|---|---|---|---|"]
