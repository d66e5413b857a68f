"""The fast paths against DoWhy's and scikit-learn's own: with ``SCM_FAST=0``, nothing a
client sees changes but the speed.

Two real workers, one with ``SCM_FAST=0`` (every fast path off: ``gcm.auto.select_model``,
scikit-learn's tree grower, the models' own ``predict``), one as shipped, fit the same
seeded request and answer every question and every kind of sample on it. The graph has a
node where gradient boosting wins (so the lean grower grows the chosen trees and the
lookup tables predict them), a linear node (so the pruned selection cuts boosting short)
and a node of two parents.

Everything compares exactly, not within a tolerance: each fast path computes the very
floats of the public one (the pruned selection's completed scores are ``select_model``'s
means over the same folds; the lean grower's trees are sklearn's bytes; a lookup table's
entries are sklearn's sums in sklearn's order). The only differences are the ones the
fast paths announce: a candidate the pruned selection cut short shows a lower bound, and
``metadata.fast_paths`` names the paths the fit ran through.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from typing import Any

import pytest
from scm_client import Worker
from support.worker_env import ONE_THREAD

GRAPH = {"nodes": ["X", "Y", "Z", "W"], "edges": [["X", "Y"], ["X", "Z"], ["Y", "W"], ["Z", "W"]]}
FIT_CONFIG = {"seed": 5, "cache": False}


def traces(n: int, seed: int, w_shift: float = 0.0) -> dict[str, list[float]]:
    """Y = sin(3X) (gradient boosting wins), Z = 2X (linear wins), W = Y·Z + shift."""
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ys = [math.sin(3 * x) + rng.gauss(0, 0.1) for x in xs]
    zs = [2 * x + rng.gauss(0, 0.3) for x in xs]
    ws = [y * z + w_shift + rng.gauss(0, 0.1) for y, z in zip(ys, zs, strict=True)]
    return {"X": xs, "Y": ys, "Z": zs, "W": ws}


def do(node: str, value: float) -> list[dict[str, Any]]:
    return [{"type": "hard", "node": node, "value": value}]


ROWS = traces(40, seed=8)
#: each question, as the wire's method and params (the model id is added per worker)
QUESTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "effect": ("effect", {"target": "W", "alternative": do("X", 1.0), "reference": do("X", 0.0),
                          "confidence": 0.9, "num_samples": 800, "num_bootstrap": 5, "seed": 3}),
    "effect_on_rows": ("effect", {"target": "W", "alternative": do("Y", 0.5), "reference": [],
                                  "observed": ROWS, "seed": 3}),
    "arrow_strength": ("arrow_strength", {"target": "W", "num_samples_conditional": 500,
                                          "seed": 2}),
    "influence": ("influence", {"target": "W", "num_training_samples": 600,
                                "num_samples_randomization": 40, "num_samples_baseline": 200,
                                "seed": 2}),
    "anomaly": ("anomaly", {"target": "W", "rows": {k: v[:5] for k, v in ROWS.items()},
                            "num_distribution_samples": 1000, "seed": 4}),
    "distribution_change": ("distribution_change", {
        "target": "W", "old": traces(200, seed=11), "new": traces(200, seed=12, w_shift=1.0),
        "num_samples": 500, "seed": 6}),
    "evaluate": ("evaluate", {"traces": traces(200, seed=13), "invertibility": True,
                              "falsify_graph": True, "max_permutations": 5, "seed": 1}),
}
SAMPLES: dict[str, dict[str, Any]] = {
    "observational": {"num_samples": 1500, "seed": 9},
    "interventional": {"interventions": do("X", 0.7), "num_samples": 1500, "seed": 9},
    "soft": {"kind": "interventional", "num_samples": 1500, "seed": 9, "interventions": [
        {"type": "soft", "node": "Y", "transform": "shift", "param": 0.5}]},
    "counterfactual": {"interventions": do("X", -0.5), "observed": ROWS},
}

Pair = dict[str, tuple[Worker, dict[str, Any]]]


@pytest.fixture(scope="module")
def pair(worker_python: str) -> Iterator[Pair]:
    """The two workers (public paths, fast paths) and each one's fit of the same request."""
    args = ("--no-warmup", "--no-store", *ONE_THREAD)  # the first fit warms each worker up
    workers = {"public": Worker(worker_python, env={"SCM_FAST": "0"}, worker_args=args),
               "fast": Worker(worker_python, worker_args=args)}
    request = {"graph": GRAPH, "traces": traces(500, seed=4), "config": FIT_CONFIG}
    try:
        with ThreadPoolExecutor(len(workers)) as pool:  # the two start and fit side by side
            fits = dict(zip(workers, pool.map(lambda w: w.call("fit", request), workers.values()),
                            strict=True))
        yield {name: (workers[name], fits[name]) for name in workers}
    finally:
        for worker in workers.values():
            worker.close()


def test_each_worker_reports_its_fast_paths(pair: Pair) -> None:
    public, fast = (pair[name][0].call("status")["fast"] for name in ("public", "fast"))
    assert fast == {name: {"active": True} for name in fast}
    assert public == {name: {"active": False, "reason": "SCM_FAST=0"} for name in fast}
    assert set(fast) == {"pruned_selection", "lean_grower", "tree_tables"}


def test_the_fit_says_which_fast_paths_it_ran_through(pair: Pair) -> None:
    """The lean grower is reported where it was really in place in the processes that
    fitted the nodes, not merely allowed: a grower that was never swapped fails here."""
    assert pair["fast"][1]["metadata"]["fast_paths"] == ["lean_grower", "pruned_selection"]
    assert pair["public"][1]["metadata"]["fast_paths"] == []


def test_the_same_models_are_chosen_with_the_same_scores(pair: Pair) -> None:
    public, fast = (pair[name][1] for name in ("public", "fast"))
    mechanisms = {name: pair[name][1]["scm"]["mechanisms"] for name in pair}
    assert mechanisms["fast"]["Y"]["model"] == "HistGradientBoostingRegressor"
    pruned = 0
    for node, described in mechanisms["fast"].items():
        stock = mechanisms["public"][node]
        assert without(described, "candidates") == without(stock, "candidates"), node
        full = {c["model"]: c["score"] for c in stock.get("candidates", [])}
        for candidate in described.get("candidates", []):
            if candidate.get("pruned"):  # a lower bound on the score it would have completed
                pruned += 1
                assert candidate["score"] <= full[candidate["model"]], (node, candidate)
            else:
                assert candidate["score"] == full[candidate["model"]], (node, candidate)
    assert pruned > 0, "nothing was cut short: the data no longer exercise the pruned selection"
    for name in ("validation", "warnings", "status"):
        assert fast[name] == public[name], name
    assert without(fast["metadata"], *RUN_DETAILS) == without(public["metadata"], *RUN_DETAILS)


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_every_question_gets_the_same_answer(pair: Pair, question: str) -> None:
    method, params = QUESTIONS[question]
    answers = {name: worker.call(method, {"model_id": fit["model_id"], **params})
               for name, (worker, fit) in pair.items()}
    assert without_model_id(answers["fast"]) == without_model_id(answers["public"])


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_every_kind_of_sample_is_the_same(pair: Pair, kind: str) -> None:
    spec = {"kind": kind, **SAMPLES[kind]}
    draws = {name: worker.sample(fit["model_id"], **spec) for name, (worker, fit) in pair.items()}
    assert draws["fast"].samples is not None
    assert draws["fast"].samples == draws["public"].samples
    assert draws["fast"].statistics == draws["public"].statistics


def test_only_the_fast_worker_predicts_from_lookup_tables(pair: Pair) -> None:
    """The samples above asked the boosted Y mechanism for over 1000 rows: the fast worker
    built its table (so the equal answers above went through it), the other did not."""
    tables = {name: next(m["table_bytes"] for m in worker.models()
                         if m["model_id"] == fit["model_id"])
              for name, (worker, fit) in pair.items()}
    assert tables["fast"] > 0
    assert tables["public"] == 0


#: what differs between two runs of one seeded fit, and which fast paths ran it
RUN_DETAILS = ("fitting_time_ms", "node_fit_ms", "fast_paths")


def without(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key not in keys}


def without_model_id(answer: Any) -> Any:
    """An answer without the model id and timings it echoes (the two workers' ids differ)."""
    if isinstance(answer, dict):
        return {k: without_model_id(v) for k, v in answer.items()
                if k != "model_id" and not k.endswith("time_ms")}
    return answer

