"""scm_worker.fast.lean_grower and lean_tree: the same gradient-boosting fits, byte for byte, as
sklearn's grower.

Every fit here runs twice on the same data, once with sklearn's ``TreeGrower`` and once
with ``LeanTreeGrower``, and the two fitted estimators must pickle to the same bytes:
every tree's node records, the binning, the scores per iteration. The data are fuzzed
over what reaches the grower: sizes around ``min_samples_leaf``, missing values, few
distinct values, constant columns, early stopping, classifiers, a non-differentiable
loss; constrained and categorical fits must come out equal too (they take sklearn's
own methods).
"""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from dowhy.gcm.auto import AssignmentQuality
from joblib import Parallel, delayed
from scm_worker import fast
from scm_worker.engine.node_fitting import (
    NodeTask,
    fit_node,
    fitting_fast_paths,
    install_fast_grower,
)
from scm_worker.fast import lean_grower, lean_tree
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import gradient_boosting, grower


@contextmanager
def growing_with(cls: type) -> Iterator[None]:
    previous = gradient_boosting.TreeGrower
    gradient_boosting.TreeGrower = cls
    try:
        yield
    finally:
        gradient_boosting.TreeGrower = previous


def both_ways(make: Any, X: np.ndarray, y: np.ndarray) -> tuple[bytes, bytes]:
    """The estimator fitted with sklearn's grower and with the lean one, pickled."""
    fitted = []
    for cls in (grower.TreeGrower, lean_tree.LeanTreeGrower):
        with growing_with(cls):
            fitted.append(pickle.dumps(make().fit(X, y)))
    return fitted[0], fitted[1]


def fuzzed_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows = int(rng.choice([5, 39, 40, 41, 120, 640, 1000, 3000]))
    features = int(rng.integers(1, 6))
    X = rng.normal(size=(rows, features))
    if rng.random() < 0.3:
        X[:, 0] = rng.integers(0, 4, size=rows)  # few distinct values: few bins
    if rng.random() < 0.2 and features > 1:
        X[:, -1] = 1.0  # constant: one bin, never split on
    y = np.sin(2 * X[:, 0]) + X[:, -1] ** 2 + rng.normal(scale=0.3, size=rows)
    if rng.random() < 0.4:
        X[rng.random(size=X.shape) < 0.1] = np.nan
    return X, y


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_regressions_fit_the_same_bytes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, y = fuzzed_data(rng)
    options = random.Random(seed).choice([
        {}, {"max_depth": 3}, {"max_leaf_nodes": None, "max_iter": 20},
        {"l2_regularization": 1.0, "min_samples_leaf": 5}, {"loss": "absolute_error"},
    ])
    stock, lean = both_ways(
        lambda: HistGradientBoostingRegressor(random_state=seed, **options), X, y
    )
    assert lean == stock


def test_tied_gains_are_split_in_sklearns_order() -> None:
    """Few distinct values and repeating targets give nodes of exactly equal gain; with a
    cap on leaves, which of them the heap splits first decides the tree."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        levels, repeats = int(rng.integers(4, 17)), int(rng.integers(20, 60))
        pattern = rng.permutation(np.tile(np.arange(int(rng.integers(2, 5))), levels)[:levels])
        X = np.repeat(np.arange(float(levels)), repeats)[:, None]
        y = pattern.repeat(repeats).astype(float)
        leaves = int(rng.integers(3, 9))
        capped = {"max_leaf_nodes": leaves, "max_iter": 5, "random_state": 0}
        stock, lean = both_ways(lambda c=capped: HistGradientBoostingRegressor(**c), X, y)
        assert lean == stock, (levels, repeats, pattern, leaves)


def test_early_stopping_fits_the_same_bytes() -> None:
    """Above 10,000 rows sklearn holds out a validation set and stops early."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12_000, 2))
    y = X[:, 0] * X[:, 1] + rng.normal(scale=0.5, size=12_000)
    stock, lean = both_ways(lambda: HistGradientBoostingRegressor(random_state=0), X, y)
    assert pickle.loads(lean).n_iter_ < 100  # it did stop early
    assert lean == stock


@pytest.mark.parametrize("classes", [2, 4])
def test_classifiers_fit_the_same_bytes(classes: int) -> None:
    """DoWhy's categorical nodes: one tree per class and iteration when there are more than two."""
    rng = np.random.default_rng(classes)
    X = rng.normal(size=(600, 3))
    y = np.digitize(X[:, 0] + rng.normal(scale=0.5, size=600), np.linspace(-1, 1, classes - 1))
    stock, lean = both_ways(lambda: HistGradientBoostingClassifier(random_state=0), X, y)
    assert lean == stock


@pytest.mark.parametrize("options", [
    {"monotonic_cst": [1, 0, -1]},
    {"interaction_cst": [[0, 1], [2]]},
    {"categorical_features": [True, False, False]},
], ids=["monotonic", "interaction", "categorical"])
def test_fits_left_to_sklearns_methods_fit_the_same_bytes(options: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 3))
    X[:, 0] = rng.integers(0, 6, size=800)
    y = X[:, 0] + np.sin(X[:, 1]) - X[:, 2] + rng.normal(scale=0.3, size=800)
    stock, lean = both_ways(lambda: HistGradientBoostingRegressor(random_state=0, **options), X, y)
    assert lean == stock


def grown(cls: type = lean_tree.LeanTreeGrower, **options: Any) -> Any:
    """A grower (the lean one unless ``cls`` says) on binned data of three features, grown;
    at most 31 leaves unless ``options`` say."""
    rng = np.random.default_rng(5)
    X_binned = np.asfortranarray(rng.integers(0, 200, size=(500, 3)).astype(np.uint8))
    gradients = rng.normal(size=500).astype(np.float32)
    tree = cls(X_binned, gradients, np.ones(1, dtype=np.float32),
               **{"max_leaf_nodes": 31, **options})
    tree.grow()
    return tree


SETUP = ("n_bins_non_missing", "has_missing_values", "is_categorical", "monotonic_cst",
         "with_monotonic_cst", "missing_values_bin_idx", "n_features", "n_threads")


@pytest.mark.parametrize("options", [
    {"max_leaf_nodes": None},
    {"n_bins_non_missing": 200, "has_missing_values": True, "max_leaf_nodes": 8},
    {"n_bins_non_missing": [200, 255, 200], "has_missing_values": [False, True, False]},
    {"monotonic_cst": [0, 1, 0], "is_categorical": [0, 0, 0], "max_depth": 4},
], ids=["defaults", "scalars", "lists", "monotonic"])
def test_a_grower_built_directly_sets_up_and_grows_as_sklearns(options: dict[str, Any]) -> None:
    """With the arguments HGB's fit never passes: scalars, lists, sklearn's defaults."""
    stock, lean = (grown(cls, **options) for cls in (grower.TreeGrower, lean_tree.LeanTreeGrower))
    for name in SETUP:
        ours, theirs = getattr(lean, name), getattr(stock, name)
        assert np.array_equal(ours, theirs), name
        assert (type(ours), np.asarray(ours).dtype) == (type(theirs), np.asarray(theirs).dtype)
    thresholds = [np.arange(256, dtype=np.float64)] * 3
    made = [t.make_predictor(thresholds).nodes.tobytes() for t in (stock, lean)]
    assert made[0] == made[1]


def test_a_categorical_feature_with_a_monotonic_constraint_is_refused_alike() -> None:
    messages = []
    for cls in (grower.TreeGrower, lean_tree.LeanTreeGrower):
        with pytest.raises(ValueError) as refused:
            cls(np.zeros((50, 2), dtype=np.uint8, order="F"), np.zeros(50, dtype=np.float32),
                np.ones(1, dtype=np.float32), is_categorical=np.array([1, 0], dtype=np.uint8),
                monotonic_cst=np.array([1, 0], dtype=np.int8))
        messages.append(str(refused.value))
    assert messages[0] == messages[1]


def test_records_pack_to_numpys_bytes_or_leave_the_build_to_sklearn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The packed records are the bytes numpy builds from the same values; a record layout
    struct cannot pack (another byte order, padding) sends make_predictor to sklearn's."""
    dtype = lean_tree.PREDICTOR_RECORD_DTYPE
    records = [(0.25, 7, 2, -1.5, 1, 1, 2, 3.0, 0, 0, 17, 0, 0),
               (-0.125, 3, 0, 0.0, 0, 0, 0, -1, 1, 1, 0, 0, 0)]
    packed = lean_tree._records_struct(2).pack(*(v for record in records for v in record))
    assert packed == np.array(records, dtype=dtype).tobytes()
    assert lean_tree._struct_format(dtype.newbyteorder(">")) is None
    assert lean_tree._struct_format(np.dtype([("a", "<f8"), ("b", "u1")], align=True)) is None
    tree = grown()
    thresholds = [np.linspace(-1, 1, 256)] * 3
    lean_nodes = tree.make_predictor(thresholds).nodes
    monkeypatch.setattr(lean_tree, "_RECORD_FORMAT", None)
    stock_nodes = tree.make_predictor(thresholds).nodes
    assert lean_nodes.base is not None and stock_nodes.base is None  # packed; sklearn fills
    assert lean_nodes.tobytes() == stock_nodes.tobytes()


def nodes_of(node: Any) -> Iterator[Any]:
    yield node
    for child in (node.left_child, node.right_child):
        if child is not None:
            yield from nodes_of(child)


def test_unconstrained_trees_take_the_lean_path_and_constrained_ones_sklearns() -> None:
    """So that the byte comparisons above compare the lean code, not sklearn's twice."""
    lean = grown()
    assert lean._lean and lean.n_nodes > 3
    assert {type(n) for n in nodes_of(lean.root)} == {lean_tree.Node}
    constrained = grown(monotonic_cst=np.array([1, 0, 0], dtype=np.int8))
    assert not constrained._lean
    assert {type(n) for n in nodes_of(constrained.root.left_child)} == {grower.TreeNode}


@pytest.fixture
def stock_grower() -> Iterator[None]:
    """sklearn's grower in place while the test runs, the previous one restored after."""
    with growing_with(grower.TreeGrower):
        yield


def test_install_puts_the_lean_grower_in_place(stock_grower: None) -> None:
    assert not lean_grower.installed()
    lean_grower.install()
    assert gradient_boosting.TreeGrower is lean_tree.LeanTreeGrower
    assert lean_grower.installed()
    lean_grower.install()  # idempotent
    assert gradient_boosting.TreeGrower is lean_tree.LeanTreeGrower


@pytest.mark.parametrize("switch", ["SCM_LEAN_GROWER", "SCM_FAST"])
def test_a_closed_gate_keeps_sklearns_grower(
    stock_grower: None, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    monkeypatch.setenv(switch, "0")
    fast.states.cache_clear()  # the gate decides again, for this environment
    try:
        install_fast_grower()
        assert gradient_boosting.TreeGrower is grower.TreeGrower
        assert not lean_grower.installed()
        assert "lean_grower" not in fitting_fast_paths()
    finally:
        fast.states.cache_clear()


def test_importing_the_worker_leaves_the_copy_unimported() -> None:
    """Only install, once the gate opens, imports lean_tree (and the sklearn-private names
    it copies): on another release those may be gone, and the worker must start."""
    code = "import sys, scm_worker.engine.services; print('scm_worker.fast.lean_tree' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "False"


def _grower_after_a_node_task(task: NodeTask) -> tuple[str, str]:
    node_fit = fit_node(task, AssignmentQuality.GOOD, 0.0)
    assert "lean_grower" in node_fit.fast_paths  # what the fit's metadata reports
    return node_fit.node, gradient_boosting.TreeGrower.__name__


def test_node_tasks_in_lokys_processes_grow_with_the_lean_grower() -> None:
    """Node tasks run in joblib's processes, which never ran the worker's start-up."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 1))
    y = np.sin(3 * x[:, 0]) + rng.normal(scale=0.1, size=300)
    task = NodeTask("y", 1, x[:240], y[:240], x[240:], x, y)
    done = Parallel(n_jobs=2)(delayed(_grower_after_a_node_task)(task) for _ in range(2))
    assert done == [("y", "LeanTreeGrower")] * 2
