"""kernel_tests.side_by_side: DoWhy's own distribution_change, its tests computed ahead.

Everything here is real DoWhy and real loky processes; the check is bit-for-bit equality
with ``gcm.distribution_change`` run plainly from the same seed, both of the answer and
of the global RNG state it leaves behind (which every later draw depends on).
"""

from __future__ import annotations

import logging
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from dowhy.gcm.independence_test.kernel import kernel_based
from scm_worker.fast import kernel_tests

RNG = np.random.default_rng(11)
NODES = 4  # a → b → c ← d: four mechanism-change tests, two of them conditional


def _linear_scm() -> tuple[gcm.StructuralCausalModel, pd.DataFrame, pd.DataFrame]:
    rows = 600
    a, d = RNG.normal(size=rows), RNG.normal(size=rows)
    b = 1.5 * a + RNG.normal(scale=0.5, size=rows)
    c = b - d + RNG.normal(scale=0.5, size=rows)
    data = pd.DataFrame({"a": a, "b": b, "c": c, "d": d})
    scm = gcm.StructuralCausalModel(nx.DiGraph([("a", "b"), ("b", "c"), ("d", "c")]))
    gcm.auto.assign_causal_mechanisms(scm, data, quality=gcm.auto.AssignmentQuality.GOOD)
    gcm.util.general.set_random_seed(0)
    gcm.fit(scm, data)
    old, new = data.iloc[:200].reset_index(drop=True), data.iloc[200:400].reset_index(drop=True)
    new["b"] += 1.0  # b's mechanism changed
    return scm, old, new


@pytest.fixture(scope="module")
def case() -> tuple[gcm.StructuralCausalModel, pd.DataFrame, pd.DataFrame]:
    return _linear_scm()


def _query(case: Any) -> Any:
    scm, old, new = case
    return lambda test: gcm.distribution_change(
        scm, old, new, "c", num_samples=300,
        independence_test=test, conditional_independence_test=test,
    )


def _seeded_run(seed: int, run: Any) -> tuple[Any, Any]:
    gcm.util.general.set_random_seed(seed)
    answer = run()
    return answer, np.random.get_state()


def _same(ours: tuple[Any, Any], dowhy: tuple[Any, Any]) -> None:
    assert ours[0].keys() == dowhy[0].keys()
    for node in ours[0]:
        assert np.array_equal(ours[0][node], dowhy[0][node]), node
    assert kernel_tests._same_state(ours[1], dowhy[1]), "the RNG went another way"


def test_side_by_side_gives_dowhys_answer_and_leaves_its_rng_state(
    case: Any, caplog: pytest.LogCaptureFixture
) -> None:
    query = _query(case)
    caplog.set_level(logging.WARNING, logger=kernel_tests.__name__)
    for seed in (3, 4):
        dowhy = _seeded_run(seed, lambda: query(kernel_based))
        ours = _seeded_run(seed, lambda: kernel_tests.side_by_side(query, NODES, n_jobs=2))
        _same(ours, dowhy)
    assert not caplog.records, "every test should have come from its recording"


def test_each_recorded_test_is_kernel_baseds_own_call(case: Any) -> None:
    """The two facts the replay rests on, call by call: from the RNG state before, DoWhy's
    kernel_based returns the p-value computed ahead, and leaves the recorded state after."""
    recorded = kernel_tests._record(_query(case), NODES)
    assert [call.inputs[2] is None for call in recorded] == [True, False, False, True]
    p_values = kernel_tests._compute(recorded, n_jobs=2)
    for call, p_value in zip(recorded, p_values, strict=True):
        np.random.set_state(call.before)
        assert kernel_based(*call.inputs) == p_value
        assert kernel_tests._same_state(np.random.get_state(), call.after)


def test_calls_beyond_the_recording_are_tested_in_place(
    case: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Too few expected calls: the first two are computed ahead, the rest as DoWhy would."""
    query = _query(case)
    dowhy = _seeded_run(5, lambda: query(kernel_based))
    ours = _seeded_run(5, lambda: kernel_tests.side_by_side(query, 2, n_jobs=2))
    _same(ours, dowhy)


def test_a_recording_that_does_not_match_is_tested_again(case: Any) -> None:
    """The replay checks each call's RNG state and inputs; a mismatch costs time only."""
    query = _query(case)
    recorded = kernel_tests._record(query, NODES)
    gcm.util.general.set_random_seed(6)
    wrong_state = kernel_tests._Replay(recorded, [0.0] * NODES)  # recorded from seed ≠ 6
    ours = (query(wrong_state), np.random.get_state())
    _same(ours, _seeded_run(6, lambda: query(kernel_based)))


def test_one_process_or_one_test_runs_the_query_plainly(case: Any) -> None:
    seen: list[Any] = []
    assert kernel_tests.side_by_side(lambda test: seen.append(test), NODES, n_jobs=1) is None
    assert kernel_tests.side_by_side(lambda test: seen.append(test), 1, n_jobs=2) is None
    assert seen == [kernel_based, kernel_based]


def test_an_error_while_recording_is_raised_by_a_plain_run() -> None:
    """DoWhy refusing the data before any test: the caller sees its error, from kernel_based's run."""
    seen: list[Any] = []

    def query(test: Any) -> None:
        seen.append(test)
        raise ValueError("refused by DoWhy")

    with pytest.raises(ValueError, match="refused by DoWhy"):
        kernel_tests.side_by_side(query, NODES, n_jobs=2)
    assert len(seen) == 2 and seen[-1] is kernel_based
