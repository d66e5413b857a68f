"""Every causal question through the real worker, beside DoWhy's own function on the same fit.

The answer checks of benchmarks/QUERIES.md (and INTERVALS.md's overlap check), as tests:
one real worker over its pipes fits the module's data; this process fits the same request
with ``scm_worker.engine.fitting.fit_model`` and the same seed, and the two fitted summaries
must agree, so both sides hold the same model. Each question is then asked through the
worker and of DoWhy's public ``gcm`` function here, DoWhy's global RNG seeded with the same
seed on both sides, with the same small knobs:

- ``arrow_strength``, ``influence``, ``anomaly``, ``distribution_change`` and the
  observational draw run DoWhy's calls in DoWhy's order: identical seed for seed;
- ``effect`` and the interventional draw take a different random stream (one pass, only
  the target's ancestors): each value's mean over the seeds within ``Z_LIMIT`` standard
  errors of DoWhy's;
- with ``confidence`` (a refit bootstrap) the two sides draw different subsets, so each
  value's interval must overlap ``gcm.confidence_intervals(gcm.fit_and_compute(...))``'s.

Not repeated here: the counterfactual draw through the worker
(test_query_draws.py::test_worker_counterfactual_sample_equals_dowhys_on_the_same_fit) and
the bounds rule on the same replicates
(test_intervals.py::test_the_bounds_are_dowhys_confidence_intervals_bounds).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from conftest import WorkerProcess
from dowhy import gcm
from scm_worker.checks import parse_fit_request
from scm_worker.engine.fitting import FittedModel, fit_model
from scm_worker.engine.frames import to_frame
from scm_worker.engine.questions import ANOMALY_REFERENCE_SAMPLES, CHANGE_MEASURES
from scm_worker.jsonio import json_object
from scm_worker.limits import Limits
from support.daemon import PipePeer

Answer = dict[str, float]
#: the target has the most ancestors (a, b, d); interventions are on its root ancestor a
TARGET, SOURCE = "c", "a"
FIT_ROWS = 400
#: small knobs, sent alike to both sides (QUERIES.md's --quick knobs, but effect's)
KNOBS: dict[str, dict[str, int]] = {
    "effect": {"num_samples": 2000},  # the worker's default: milliseconds, and a tight mean
    "arrow_strength": {"num_samples_conditional": 500},
    "influence": {"num_training_samples": 500, "num_samples_randomization": 20,
                  "num_samples_baseline": 100},
    "anomaly": {"num_distribution_samples": 500},
    "distribution_change": {"num_samples": 500},
    "sample": {"num_samples": 500},
}
#: answers further apart than this many standard errors (across seeds) differ
Z_LIMIT = 5.0
#: seeds for the answers compared across seeds: cheap questions, so enough seeds that
#: Z_LIMIT standard errors of the effect come to about a tenth of it (it is about 0.64)
SEEDS = range(1000, 1016)
#: the bootstrap's params on both sides: few replicates, the machine is shared
CONFIDENCE, NUM_BOOTSTRAP, SUBSET_FRACTION = 0.95, 10, 0.75
#: a fit with model selection, a bootstrap of refits: liveness bounds on a loaded machine
REPLY_TIMEOUT = 600.0


def _columns() -> dict[str, np.ndarray]:
    """a → b → c ← d → e, non-linear at c (so selection picks more than linear models; e stays
    linear, so the bootstraps' refits are cheap), then 200 observed/old and 200 new rows."""
    rng = np.random.default_rng(17)
    rows = FIT_ROWS + 400
    a, d = rng.normal(size=rows), rng.normal(size=rows)
    b = 1.5 * a + rng.normal(scale=0.5, size=rows)
    c = np.tanh(b) + 0.8 * d**2 + rng.normal(scale=0.3, size=rows)
    e = 0.5 * d + rng.normal(scale=0.3, size=rows)
    return dict(zip("abcde", (a, b, c, d, e), strict=True))


def _case() -> dict[str, Any]:
    columns = _columns()
    part = {name: {n: c[start:stop].tolist() for n, c in columns.items()}
            for name, start, stop in (("fit", 0, FIT_ROWS), ("old", FIT_ROWS, FIT_ROWS + 200),
                                      ("new", FIT_ROWS + 200, FIT_ROWS + 400))}
    shift, jolt = {TARGET: 0.5, SOURCE: 0.5}, {TARGET: 3.0, SOURCE: 2.0}
    return {
        "fit": {"graph": {"nodes": list("abcde"),
                          "edges": [["a", "b"], ["b", "c"], ["d", "c"], ["d", "e"]]},
                "traces": part["fit"], "config": {"seed": 3, "validate_r2": False}},
        "old": part["old"],  # also the observed rows
        "new": {n: [v + shift.get(n, 0.0) for v in c] for n, c in part["new"].items()},
        "anomalous": {n: [v + jolt.get(n, 0.0) for v in c[:3]] for n, c in part["old"].items()},
    }


CASE = _case()


# -- the two sides ----------------------------------------------------------------------


class ThroughWorker:
    """The questions through the real worker over its pipes, answers as flat dicts."""

    def __init__(self, peer: PipePeer, fit: dict[str, Any]) -> None:
        self.peer, self.fit = peer, fit

    def ask(self, method: str, seed: int, **params: Any) -> dict[str, Any]:
        params = {"model_id": self.fit["model_id"], "seed": seed, **params}
        return self.peer.result(method, params, timeout=REPLY_TIMEOUT)  # type: ignore[no-any-return]

    def run(self, query: str, seed: int) -> Answer:
        """``query``'s point answer (``sample_*``: the draw's mean and std per node)."""
        if query.startswith("sample_"):
            kind = query.removeprefix("sample_")
            hard = {} if kind == "observational" else {"interventions": _hard(1.0)}
            result = self.ask("sample", seed, kind=kind, return_samples=False, **hard,
                              **KNOBS["sample"])
            return {f"{stat}[{node}]": values[stat]
                    for node, values in result["statistics"].items() for stat in ("mean", "std")}
        result = self.ask(query, seed, target=TARGET, **QUESTIONS[query], **KNOBS[query])
        return _fields(query, result, FIELDS[query])


def _hard(value: float) -> list[dict[str, Any]]:
    return [{"type": "hard", "node": SOURCE, "value": value}]


#: each question's own params through the worker
QUESTIONS: dict[str, dict[str, Any]] = {
    "effect": {"alternative": _hard(1.0), "reference": _hard(0.0)},
    "arrow_strength": {},
    "influence": {},
    "anomaly": {"rows": CASE["anomalous"]},
    "distribution_change": {"old": CASE["old"], "new": CASE["new"], "measure": "mean"},
}
#: each question's answer fields through the worker, and the prefix its values get
FIELDS: dict[str, dict[str, str]] = {
    "effect": {"effect": "effect"},
    "arrow_strength": {"strengths": ""},
    "influence": {"influence": ""},
    "anomaly": {"scores": "score", "attributions": "attribution"},
    "distribution_change": {"attributions": ""},
}
#: the same, for the intervals beside them (``confidence``)
INTERVAL_FIELDS: dict[str, dict[str, str]] = {
    "effect": {"interval": "effect"},
    "arrow_strength": {"intervals": ""},
    "influence": {"intervals": ""},
    "anomaly": {"score_intervals": "score", "intervals": "attribution"},
    "distribution_change": {"intervals": ""},
}


def _flat(values: Any, per_row: bool) -> dict[str, Any]:
    """``{node: v}`` → ``{"[node]": v}``; per row, ``{node: [v per row]}`` →
    ``{"[node][i]": v}``; one number (or ``[lo, hi]``) → ``{"": it}``."""
    if not isinstance(values, dict):
        return {"": values}
    if per_row:
        return {f"[{node}][{i}]": v for node, rows in values.items() for i, v in enumerate(rows)}
    return {f"[{node}]": v for node, v in values.items()}


def _fields(query: str, result: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The answer's values named as the in-process side names DoWhy's."""
    return {f"{prefix}{key}": value for field, prefix in fields.items()
            for key, value in _flat(result[field], per_row=query == "anomaly").items()}


class InProcess:
    """DoWhy's own functions in this process on the same fitted model, seeded alike."""

    def __init__(self, model: FittedModel) -> None:
        self.model = model
        frame = pd.DataFrame
        self.old, self.new = frame(CASE["old"]), frame(CASE["new"])
        self.anomalous = frame(CASE["anomalous"])

    def run(self, query: str, seed: int) -> Answer:
        gcm.util.general.set_random_seed(seed)  # DoWhy's documented seeding, as the worker's
        return self.answer(query, self.model.scm)

    def answer(self, query: str, scm: Any) -> Answer:
        if query.startswith("sample_"):
            return _statistics(self.draw(query))
        ask: dict[str, Callable[[Any], Answer]] = {
            "effect": self.effect, "arrow_strength": self.arrow_strength,
            "influence": self.influence, "anomaly": self.anomaly,
            "distribution_change": self.distribution_change,
        }
        return ask[query](scm)

    def effect(self, scm: Any) -> Answer:
        value = gcm.average_causal_effect(
            scm, TARGET, {SOURCE: lambda _: 1.0}, {SOURCE: lambda _: 0.0},
            num_samples_to_draw=KNOBS["effect"]["num_samples"])
        return {"effect": float(value)}

    def arrow_strength(self, scm: Any) -> Answer:
        strengths = gcm.arrow_strength(scm, TARGET, n_jobs=os.cpu_count() or 1,
                                       **KNOBS["arrow_strength"])
        return {f"[{parent}]": float(v) for (parent, _), v in strengths.items()}

    def influence(self, scm: Any) -> Answer:
        contributions = gcm.intrinsic_causal_influence(scm, TARGET, **KNOBS["influence"])
        return {f"[{node}]": float(v) for node, v in contributions.items()}

    def anomaly(self, scm: Any) -> Answer:
        """On the target and its ancestors, the part of the model the worker's answer covers
        (DoWhy's functions score every node of the model they are given)."""
        keep = nx.ancestors(scm.graph, TARGET) | {TARGET}
        upstream = gcm.InvertibleStructuralCausalModel(scm.graph.subgraph(keep).copy())
        rows = self.anomalous[list(upstream.graph.nodes)]
        scores = gcm.anomaly_scores(upstream, rows,
                                    num_samples_unconditional=ANOMALY_REFERENCE_SAMPLES,
                                    num_samples_conditional=ANOMALY_REFERENCE_SAMPLES)
        attributions = gcm.attribute_anomalies(upstream, TARGET, rows, **KNOBS["anomaly"])
        return {**_per_row("score", scores), **_per_row("attribution", attributions)}

    def distribution_change(self, scm: Any) -> Answer:
        attributions = gcm.distribution_change(
            scm, self.old, self.new, TARGET, difference_estimation_func=CHANGE_MEASURES["mean"],
            **KNOBS["distribution_change"])
        return {f"[{node}]": float(v) for node, v in attributions.items()}

    def draw(self, query: str) -> pd.DataFrame:
        scm, count = self.model.scm, KNOBS["sample"]["num_samples"]
        if query == "sample_observational":
            return gcm.draw_samples(scm, count)
        return gcm.interventional_samples(scm, {SOURCE: lambda _: 1.0}, num_samples_to_draw=count)

    def interval(self, question: str, seed: int) -> dict[str, tuple[float, float]]:
        """``gcm.confidence_intervals(gcm.fit_and_compute(...))`` as DoWhy's docs show it:
        each replicate refits clones of the fitted mechanisms on 75 % of the fit rows."""
        assert self.model.data is not None
        gcm.util.general.set_random_seed(seed)
        _, intervals = gcm.confidence_intervals(
            gcm.fit_and_compute(lambda refitted: self.answer(question, refitted),
                                self.model.scm, self.model.data,
                                bootstrap_data_subset_size_fraction=SUBSET_FRACTION),
            confidence_level=CONFIDENCE, num_bootstrap_resamples=NUM_BOOTSTRAP)
        return {key: (float(low), float(high)) for key, (low, high) in intervals.items()}


def _per_row(prefix: str, values: dict[Any, Any]) -> Answer:
    return {f"{prefix}[{node}][{i}]": float(v)
            for node, column in values.items() for i, v in enumerate(np.ravel(column))}


def _statistics(samples: pd.DataFrame) -> Answer:
    """The mean and (population) std per node, as the worker's ``sample`` statistics."""
    return {f"{stat}[{node}]": float(getattr(samples[node].to_numpy(float), stat)())
            for node in samples.columns for stat in ("mean", "std")}


# -- the fitted model, once per module -----------------------------------------------------


Sides = tuple[ThroughWorker, InProcess]


@pytest.fixture(scope="module")
def _module_worker() -> Iterator[list[WorkerProcess]]:
    """This module's worker at DoWhy's default ``n_jobs``, as the in-process side runs: at
    ``n_jobs=1`` DoWhy runs its Shapley jobs in its own process, where each job reseeds the
    global random state, so ``influence`` and ``distribution_change`` draw another stream
    (DoWhy's behaviour at one job, the worker's at ``--threads 1``)."""
    holder = [WorkerProcess(threads=None)]
    yield holder
    holder[0].stop()


@pytest.fixture(scope="module")
def sides(_module_worker: list[WorkerProcess]) -> Sides:
    """The worker fits while this process fits the same request (the two take one core each)."""
    peer = PipePeer(_module_worker[0])
    request = CASE["fit"]
    fitting = peer.request("fit", request)
    graph, columns, config = parse_fit_request(
        request["graph"], request["traces"], request["config"], Limits())
    model = fit_model(graph, to_frame(columns), config, os.cpu_count() or 1)
    reply = peer.reply_to(fitting, timeout=REPLY_TIMEOUT)
    assert "error" not in reply, reply
    return ThroughWorker(peer, reply["result"]), InProcess(model)


def test_both_sides_hold_the_same_fitted_model(sides: Sides) -> None:
    worker, dowhy = sides
    mine = json.loads(json.dumps(json_object(dowhy.model.summary)))
    assert _differences(worker.fit["scm"], mine["scm"], "scm") == []
    assert _differences(worker.fit["validation"], mine["validation"], "validation") == []
    chosen = {m.get("model", m["type"]) for m in worker.fit["scm"]["mechanisms"].values()}
    assert len(chosen) > 2, chosen  # not all linear: the polynomial path is asked too


def _differences(ours: Any, theirs: Any, path: str) -> list[str]:
    """Where two fitted summaries differ (floats equal to 1e-9 relative)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{path}: keys {sorted(ours)} vs {sorted(theirs)}"]
        return [d for k in ours for d in _differences(ours[k], theirs[k], f"{path}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for d in _differences(a, b, f"{path}[{i}]")]
    if isinstance(ours, float) and isinstance(theirs, (int, float)):
        same = math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    else:
        same = ours == theirs
    return [] if same else [f"{path}: {ours!r} vs {theirs!r}"]


# -- identical seed for seed -----------------------------------------------------------------


@pytest.mark.parametrize("query, seeds", [
    ("arrow_strength", (1000, 1001)),
    ("influence", (1000,)),
    ("anomaly", (1000, 1001)),
    ("distribution_change", (1000,)),  # it refits DoWhy's clones on old and new: seconds
    ("sample_observational", (1000, 1001)),
])
def test_the_answer_is_dowhys_seed_for_seed(sides: Sides, query: str,
                                            seeds: tuple[int, ...]) -> None:
    worker, dowhy = sides
    for seed in seeds:
        ours, theirs = worker.run(query, seed), dowhy.run(query, seed)
        assert ours.keys() == theirs.keys(), seed
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), seed


# -- equal within sampling error across seeds ---------------------------------------------------


@pytest.mark.parametrize("query", ["effect", "sample_interventional"])
def test_the_answer_is_dowhys_within_sampling_error(sides: Sides, query: str) -> None:
    worker, dowhy = sides
    ours = [worker.run(query, seed) for seed in SEEDS]
    theirs = [dowhy.run(query, seed) for seed in SEEDS]
    assert ours[0].keys() == theirs[0].keys()
    assert ours[0] != pytest.approx(theirs[0], rel=1e-9)  # a different stream: not the same draw
    for key in theirs[0]:
        mine, dowhys = [a[key] for a in ours], [a[key] for a in theirs]
        spread = math.sqrt(statistics.variance(mine) / len(mine)
                           + statistics.variance(dowhys) / len(dowhys))
        gap = abs(statistics.fmean(mine) - statistics.fmean(dowhys))
        assert gap <= Z_LIMIT * spread, (key, statistics.fmean(mine), statistics.fmean(dowhys))


# -- with confidence: intervals that overlap DoWhy's -----------------------------------------


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_each_interval_overlaps_dowhys_refit_bootstrap(sides: Sides, question: str) -> None:
    worker, dowhy = sides
    theirs = dowhy.interval(question, seed=1000)
    result = worker.ask(question, 1000, target=TARGET, confidence=CONFIDENCE,
                        num_bootstrap=NUM_BOOTSTRAP, **QUESTIONS[question], **KNOBS[question])
    ours = _fields(question, result, INTERVAL_FIELDS[question])
    assert ours.keys() == theirs.keys()
    for key, (low, high) in theirs.items():
        assert max(ours[key][0], low) <= min(ours[key][1], high), (key, ours[key], (low, high))
