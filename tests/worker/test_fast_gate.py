"""scm_worker.fast: the gate of the fast paths, and the DoWhy private names they read.

Each fast path runs only on the upstream releases it was verified on, and ``SCM_FAST=0``
(or a path's own switch) turns it off; off, the reason is what ``status`` shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dowhy.gcm.auto import AssignmentQuality
from dowhy.gcm.ml import PredictionModel, create_linear_regressor
from scm_worker import fast
from scm_worker.fast import selection

PINS = Path(__file__).resolve().parents[2] / "client" / "scm_client" / "worker-requirements.txt"


@pytest.fixture
def fresh_gate() -> Iterator[None]:
    """The gate decides again for the test's environment, and again after it."""
    fast.states.cache_clear()
    yield
    fast.states.cache_clear()


def test_every_fast_path_is_active_on_the_pinned_releases(
    fresh_gate: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(fast.SWITCH, raising=False)
    monkeypatch.delenv("SCM_LEAN_GROWER", raising=False)
    assert fast.report() == {name: {"active": True} for name in fast.VERIFIED}
    assert set(fast.VERIFIED) == {"pruned_selection", "lean_grower", "tree_tables"}


def test_scm_fast_0_turns_every_path_off_with_its_reason(
    fresh_gate: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fast.SWITCH, "0")
    assert fast.report() == {
        name: {"active": False, "reason": "SCM_FAST=0"} for name in fast.VERIFIED
    }
    assert not any(fast.enabled(name) for name in fast.VERIFIED)


def test_a_paths_own_switch_turns_only_that_path_off() -> None:
    env = {"SCM_LEAN_GROWER": "0"}
    assert fast.decide("lean_grower", env) == fast.PathState(False, "SCM_LEAN_GROWER=0")
    assert fast.decide("tree_tables", env).active
    assert fast.decide("pruned_selection", env).active


def test_an_unverified_release_closes_the_paths_that_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions = {"dowhy": "0.14", "scikit-learn": "1.8.0"}
    monkeypatch.setattr(fast, "package_version", versions.__getitem__)
    assert fast.decide("pruned_selection", {}).active  # reads DoWhy's names only
    state = fast.decide("lean_grower", {})
    assert not state.active
    assert state.reason == "scikit-learn 1.8.0 is not 1.7.2, as verified"
    assert not fast.decide("tree_tables", {}).active


def test_the_gate_decides_once_per_process() -> None:
    assert fast.states() is fast.states()


def test_each_verified_release_is_the_pinned_one() -> None:
    """A new pin of an upstream a fast path reads must come with a look at that path (and
    a new entry in ``VERIFIED``): until then the path is off, and this test says so."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", PINS.read_text(), re.MULTILINE))
    for name, releases in fast.VERIFIED.items():
        for package, verified in releases.items():
            assert pins[package] in verified, (name, package, pins[package])


@pytest.mark.parametrize("quality", selection.QUALITIES)
def test_regressors_are_dowhys_candidate_factories(quality: AssignmentQuality) -> None:
    """``auto._LIST_OF_POTENTIAL_REGRESSORS_*``: factories of unfitted prediction models,
    the linear one among them (the parsimony rule looks for it)."""
    factories = selection.regressors(quality)
    assert factories and create_linear_regressor in factories
    for factory in factories:
        assert isinstance(factory(), PredictionModel), factory


def test_regressors_grow_with_quality() -> None:
    good = selection.regressors(AssignmentQuality.GOOD)
    better = selection.regressors(AssignmentQuality.BETTER)
    assert set(good) <= set(better)
    assert AssignmentQuality.BEST not in selection.QUALITIES  # BEST is DoWhy's own selection
