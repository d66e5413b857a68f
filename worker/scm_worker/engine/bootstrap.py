"""Uncertainty on a causal question's answer: DoWhy's bootstrap, replicates run in parallel.

With ``refit`` (the default) this is ``gcm.confidence_intervals(gcm.fit_and_compute(f,
scm, training_data))``: each replicate draws ``SUBSET_FRACTION`` of the model's training
rows without replacement (``fit_and_compute``'s ``bootstrap_data_subset_size_fraction``),
refits clones of the model's mechanisms on them (the same types, no re-selection:
``auto_assign_quality=None``) and asks the question again. Without it, it is
``gcm.confidence_intervals(f)``: the question asked again on the fitted model, so the
interval covers the question's sampling noise only.

Replicates are independent: each seeds the global RNGs from its own seed (the request's
seed and its index), so a seeded answer is the same whichever process runs which
replicate, and they run in the worker's joblib processes as node fits do
(``node_fitting``). The summary is per value: the replicates' median and, as DoWhy's
``confidence_intervals`` bounds them, their ``(1 − confidence)`` and ``confidence``
percentiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from dowhy import gcm
from joblib import Parallel, delayed

from ..cancellation import NEVER, CancelToken
from .dowhy_api import seed_global
from .fitting import FittedModel, dowhy_errors
from .node_fitting import collected, install_fast_grower, single_threaded

#: the share of the training rows each refit draws (``gcm.fit_and_compute``'s default)
SUBSET_FRACTION: Final = 0.75


@dataclass(frozen=True)
class Replicate:
    """One question to ask again: what a replicate needs, pickled to joblib's processes."""

    compute: Callable[..., dict[str, Any]]
    model: FittedModel
    target: str
    params: dict[str, Any]
    refit: bool


def replicate_seed(seed: int, index: int) -> int:
    """Replicate ``index``'s seed: the same at any concurrency."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def run_replicate(job: Replicate, seed: int) -> dict[str, Any]:
    """Seed, refit on a subset of the training rows (with ``refit``), ask: one thread."""
    install_fast_grower()  # loky's processes run replicates without configure_dowhy
    gcm.config.disable_progress_bars()
    with single_threaded():
        seed_global(seed)
        model = refitted(job.model) if job.refit else job.model
        return job.compute(model, job.target, **job.params)


def refitted(model: FittedModel) -> FittedModel:
    """The model's mechanisms, cloned untrained and fitted on a random subset of its rows,
    drawn from the global RNG as ``fit_and_compute``'s snapshot draws it."""
    assert model.data is not None
    data = model.data
    rows = np.random.choice(len(data), int(len(data) * SUBSET_FRACTION), replace=False)
    scm = model.scm.clone()
    with dowhy_errors("bootstrap refit"):
        gcm.fit(scm, data.iloc[rows])
    return replace(model, scm=scm, data=None)


def replicates(
    job: Replicate, seed: int, count: int, n_jobs: int, cancel: CancelToken = NEVER
) -> list[dict[str, Any]]:
    """``count`` answers, each from its own seed; in joblib's processes when there are several.

    As a node fit's, a cancel stops the waiting at once and the replicates already in
    joblib's hands run out in the background, their answers dropped.
    """
    seeds = [replicate_seed(seed, index) for index in range(count)]
    if n_jobs <= 1 or count == 1:
        return [run_replicate(job, one) for one in seeds]
    answers = list(collected(lambda: Parallel(
        n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs"
    )(delayed(run_replicate)(job, one) for one in seeds), cancel))
    cancel.checkpoint()
    return answers


def summarise(
    answers: list[dict[str, Any]], estimates: dict[str, str], confidence: float
) -> dict[str, Any]:
    """The first answer with each estimated field replaced by the replicates' medians, and
    its interval field (``estimates``: field → interval field) added beside it."""
    summary = dict(answers[0])
    for field, interval_field in estimates.items():
        summary[field], summary[interval_field] = summary_of(
            [answer[field] for answer in answers], confidence
        )
    return summary


def summary_of(values: list[Any], confidence: float) -> tuple[Any, Any]:
    """(median, [lo, hi]) of each number in the replicates' like-shaped values: a number,
    a ``{key: value}`` or a per-row list, nested as the answer nests them."""
    first = values[0]
    if isinstance(first, dict):
        keyed = {key: summary_of([value[key] for value in values], confidence) for key in first}
        return {k: pair[0] for k, pair in keyed.items()}, {k: pair[1] for k, pair in keyed.items()}
    if isinstance(first, list):
        rows = [summary_of([value[i] for value in values], confidence) for i in range(len(first))]
        return [pair[0] for pair in rows], [pair[1] for pair in rows]
    draws = np.asarray(values, dtype=float)
    bounds = sorted(np.percentile(draws, [(1.0 - confidence) * 100, confidence * 100]))
    return float(np.median(draws)), [float(bounds[0]), float(bounds[1])]
