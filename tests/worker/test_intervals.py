"""Uncertainty on every causal answer: ``confidence``, ``num_bootstrap``, ``refit``.

The real worker over its pipes answers each of the five questions with DoWhy's bootstrap
(engine/bootstrap.py): seeded answers reproduce, each median lies in its interval, a
refit bootstrap is not the recompute-only one, intervals narrow with more training rows,
the answer does not depend on how many processes ran the replicates, and a model stored
without its training rows refuses a refit by name.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import WorkerProcess
from support.daemon import PipePeer
from support.pipes import WorkerPipes

Spawn = Callable[..., WorkerProcess]
GRAPH = {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}
DO_X1 = [{"type": "hard", "node": "X", "value": 1.0}]
DO_X0 = [{"type": "hard", "node": "X", "value": 0.0}]
#: the bootstrap's params as the tests ask them: few replicates, the machine is shared
BOOTSTRAP = {"confidence": 0.95, "num_bootstrap": 5, "seed": 7}


def chain(rows: int, seed: int = 0, shift: float = 0.0) -> dict[str, list[float]]:
    """X → Y → Z, linear: Y = 2X + ε, Z = 3Y + ε (the effect of X on Z is 6)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows) + shift
    y = 2 * x + rng.normal(size=rows)
    z = 3 * y + rng.normal(size=rows)
    return {"X": x.tolist(), "Y": y.tolist(), "Z": z.tolist()}


#: each question's own params on the chain, small knobs
QUESTIONS: dict[str, dict[str, Any]] = {
    "effect": {"target": "Z", "alternative": DO_X1, "reference": DO_X0, "num_samples": 2000},
    "arrow_strength": {"target": "Z", "num_samples_conditional": 500},
    "influence": {"target": "Z", "num_training_samples": 1000,
                  "num_samples_randomization": 100, "num_samples_baseline": 200},
    "anomaly": {"target": "Z", "rows": {"X": [3.0, 0.1], "Y": [6.0, 0.0], "Z": [25.0, 0.5]},
                "num_distribution_samples": 500},
    "distribution_change": {"target": "Z", "old": chain(200, seed=1),
                            "new": chain(200, seed=2, shift=1.0), "num_samples": 500},
}
#: each answer's estimated field → the field its intervals are in
ESTIMATES = {
    "effect": {"effect": "interval"},
    "arrow_strength": {"strengths": "intervals"},
    "influence": {"influence": "intervals"},
    "anomaly": {"attributions": "intervals", "scores": "score_intervals"},
    "distribution_change": {"attributions": "intervals"},
}


def fitted(peer: PipePeer, rows: int) -> str:
    fit = peer.result("fit", {"graph": GRAPH, "traces": chain(rows), "config": {"seed": 1}},
                      timeout=600)
    return str(fit["model_id"])


def ask(peer: PipePeer, name: str, model_id: str, **params: Any) -> dict[str, Any]:
    """The question's answer, its run time taken out (the rest must reproduce)."""
    answer = peer.result(name, {"model_id": model_id, **QUESTIONS[name], **params}, timeout=600)
    answer["metadata"].pop("time_ms")
    return answer  # type: ignore[no-any-return]


def pairs(values: Any, intervals: Any) -> Iterator[tuple[float, list[float]]]:
    """(value, [lo, hi]) for every number of an answer's field, nested as it nests them."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield from pairs(value, intervals[key])
    elif isinstance(values, list):
        for value, interval in zip(values, intervals, strict=True):
            yield from pairs(value, interval)
    else:
        yield values, intervals


@pytest.fixture(scope="module")
def chain_model(_module_worker: list[WorkerProcess]) -> tuple[PipePeer, str]:
    peer = PipePeer(_module_worker[0])
    return peer, fitted(peer, 500)


@pytest.mark.parametrize("name", QUESTIONS)
def test_a_seeded_interval_reproduces_holds_its_median_and_differs_without_refit(
    chain_model: tuple[PipePeer, str], name: str
) -> None:
    peer, model_id = chain_model
    first = ask(peer, name, model_id, **BOOTSTRAP)
    assert ask(peer, name, model_id, **BOOTSTRAP) == first
    assert first["metadata"] | {"confidence": 0.95, "num_bootstrap": 5, "refit": True} == (
        first["metadata"])
    for field, interval_field in ESTIMATES[name].items():
        for value, (low, high) in pairs(first[field], first[interval_field]):
            assert low <= value <= high
    recomputed = ask(peer, name, model_id, **BOOTSTRAP, refit=False)
    assert recomputed["metadata"]["refit"] is False
    estimated = [field for fields in ESTIMATES[name].items() for field in fields]
    assert [recomputed[f] for f in estimated] != [first[f] for f in estimated]


@pytest.mark.parametrize("name", QUESTIONS)
def test_without_confidence_the_answer_is_the_point_answer(
    chain_model: tuple[PipePeer, str], name: str
) -> None:
    peer, model_id = chain_model
    point = ask(peer, name, model_id, seed=7)
    assert "confidence" not in point["metadata"] and "intervals" not in point
    assert point.get("interval") is None


def interval_width(peer: PipePeer, rows: int) -> float:
    answer = ask(peer, "effect", fitted(peer, rows), confidence=0.95, num_bootstrap=20,
                 num_samples=20_000, seed=3)
    low, high = answer["interval"]
    assert low <= answer["effect"] <= high
    assert answer["effect"] == pytest.approx(6.0, rel=0.1)
    return float(high - low)


def test_a_refit_interval_narrows_with_more_training_rows(
    chain_model: tuple[PipePeer, str]
) -> None:
    """Refitting on 75 % subsets of 3,000 rows moves the coefficients less than of 300."""
    peer, _ = chain_model
    assert interval_width(peer, 3000) < 0.7 * interval_width(peer, 300)


def test_a_seeded_answer_is_the_same_at_one_and_two_processes(spawn_worker: Spawn) -> None:
    answers = []
    for threads in ("1", "2"):
        peer = PipePeer(spawn_worker("--threads", threads))
        model_id = fitted(peer, 500)
        answers.append([
            {k: v for k, v in ask(peer, name, model_id, **BOOTSTRAP).items() if k != "metadata"}
            for name in ("arrow_strength", "anomaly", "effect")
        ])
    assert answers[0] == answers[1]


@pytest.fixture
def store_worker(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], PipePeer]]]:
    """A store directory, and a worker serving it over pipes once started."""
    store, started = tmp_path / "store", []

    def start() -> PipePeer:
        started.append(WorkerPipes([sys.executable, "-m", "scm_worker", "--no-warmup",
                                    "--store", str(store)]))
        return PipePeer(started[-1])

    yield store, start
    for worker in started:
        worker.stop()


def test_a_model_stored_without_its_rows_refuses_a_refit_by_name(
    store_worker: tuple[Path, Callable[[], PipePeer]]
) -> None:
    """A model file as a worker from before the intervals wrote it: the same FittedModel
    pickle, without the ``data`` attribute that class did not have, written through the
    store's own authenticated write path (ModelFiles, as ModelStore._persist writes)."""
    from scm_worker.checks import parse_fit_request
    from scm_worker.engine.fitting import fit_model
    from scm_worker.engine.frames import to_frame
    from scm_worker.engine.persistence import ModelFiles
    from scm_worker.limits import Limits

    graph, columns, config = parse_fit_request(GRAPH, chain(300), {"seed": 1}, Limits())
    model = fit_model(graph, to_frame(columns), config)
    del model.__dict__["data"]
    store, start = store_worker
    ModelFiles(store).write_payload("m-00000000000000aa", pickle.dumps(model))
    peer = start()
    reply = peer.call("effect", {"model_id": "m-00000000000000aa", **QUESTIONS["effect"],
                                 **BOOTSTRAP}, timeout=600)
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == "refit"
    assert "training rows" in reply["error"]["data"]["reason"]
    recomputed = ask(peer, "effect", "m-00000000000000aa", **BOOTSTRAP, refit=False)
    low, high = recomputed["interval"]
    assert low <= recomputed["effect"] <= high


def test_the_bounds_are_dowhys_confidence_intervals_bounds() -> None:
    """The same replicates through ``gcm.confidence_intervals`` (fed one by one, in order)
    bound each value exactly as ``bootstrap.summary_of`` does: DoWhy's percentile rule."""
    from dowhy import gcm
    from scm_worker.engine.bootstrap import summary_of

    rows = np.random.default_rng(2).normal(size=(17, 2))
    replicates = [{"a": float(a), "b": float(b)} for a, b in rows]
    feed = iter(replicates)
    _, theirs = gcm.confidence_intervals(lambda: next(feed), confidence_level=0.9,
                                         num_bootstrap_resamples=len(replicates))
    medians, ours = summary_of(replicates, 0.9)
    assert ours == {key: pytest.approx(list(bounds)) for key, bounds in theirs.items()}
    assert medians == {key: float(np.median(rows[:, i])) for i, key in enumerate("ab")}
