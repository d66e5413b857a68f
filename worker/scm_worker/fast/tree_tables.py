"""A boosted-tree regressor's predictions as one lookup table: the same numbers, no tree walk.

A fitted ``HistGradientBoostingRegressor`` is a sum of up to a few hundred trees, and
sklearn predicts them one at a time, each in its own OpenMP region: for the 500-2000
rows a query draws, that per-tree cost is most of a sample's time (a 100-tree model
takes 7 ms for 1000 rows, DoWhy's whole observational draw of an 8-node model 21 ms).
But the sum is a step function of the inputs: on each feature, only where a value lies
among the thresholds the trees split it at matters. When a mechanism has few parents,
the cells of that grid are few (two parents with ~230 thresholds each: ~53,000 cells),
and the sum can be tabulated once per model and looked up with one ``searchsorted`` per
feature.

The table is built tree by tree in sklearn's own order (zeros, plus the baseline, plus
each tree's leaf value, then the loss's inverse link), so every entry is the very float
sklearn computes for an input in that cell: predictions are identical, not close.
Each tree writes its leaf values into the rectangles of cells its leaves cover; a
feature a tree never splits on spans the whole axis.

Everything here reads sklearn's fitted internals (``_predictors``, ``_baseline_prediction``,
``_loss``), which the pinned scikit-learn defines and a release may move: the engine
builds tables only where the gate (``scm_worker.fast``, path ``tree_tables``) says this is
the scikit-learn they were verified on, and tests/worker/test_tree_tables.py compares the
table with ``predict`` bit for bit, so a move fails there, loudly. What the table does
not cover it refuses to build (``None``): categorical splits, more than one tree per
iteration, too many cells. Missing values are not looked up (``lookup`` returns None),
because the samplers never draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

#: the most cells a table may have (8 bytes each: 2 MiB)
MAX_CELLS = 1 << 18


@dataclass(frozen=True)
class TreeTable:
    """The model's prediction for every cell of its threshold grid."""

    #: per input feature, the sorted thresholds the trees split it at (empty: never split)
    thresholds: tuple[np.ndarray, ...]
    #: one axis per feature, of length len(thresholds) + 1
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        """The memory the table holds: what the model store counts against its budget."""
        return int(self.values.nbytes + sum(cuts.nbytes for cuts in self.thresholds))

    def lookup(self, X: np.ndarray) -> np.ndarray | None:
        """The predictions for the rows of ``X`` (n × features, numbers); None if it holds NaN."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.thresholds) or np.isnan(X).any():
            return None
        flat = np.zeros(X.shape[0], dtype=np.intp)
        for feature, cuts in enumerate(self.thresholds):
            # x ≤ cuts[j] exactly for the cells 0..j: searchsorted's left side
            flat = flat * (len(cuts) + 1) + np.searchsorted(cuts, X[:, feature], side="left")
        result: np.ndarray = self.values.reshape(-1)[flat]
        return result


def may_build(model: Any) -> bool:
    """Whether ``build`` may apply: a fitted boosted regressor, one tree per iteration."""
    return (
        type(model) is HistGradientBoostingRegressor
        and getattr(model, "n_trees_per_iteration_", None) == 1
    )


def build(model: Any) -> TreeTable | None:
    """The table of a fitted ``HistGradientBoostingRegressor``, or None where none applies."""
    if not may_build(model):
        return None
    trees = [iteration[0].nodes for iteration in model._predictors]
    if any(np.any(nodes["is_categorical"][nodes["is_leaf"] == 0]) for nodes in trees):
        return None
    thresholds = _thresholds(trees, model.n_features_in_)
    shape = tuple(len(cuts) + 1 for cuts in thresholds)
    if int(np.prod(shape)) > MAX_CELLS:
        return None
    raw = np.zeros(shape, dtype=model._baseline_prediction.dtype)
    raw += model._baseline_prediction.reshape(-1)[0]
    tree = np.empty(shape, dtype=raw.dtype)
    for nodes in trees:
        _fill(tree, nodes, thresholds)
        raw += tree
    values = np.asarray(model._loss.link.inverse(raw.reshape(-1))).reshape(shape)
    return TreeTable(thresholds, values)


def _thresholds(trees: list[np.ndarray], features: int) -> tuple[np.ndarray, ...]:
    """Per feature, every distinct threshold any tree splits it at, sorted."""
    splits = np.concatenate([nodes[nodes["is_leaf"] == 0] for nodes in trees])
    return tuple(
        np.unique(splits["num_threshold"][splits["feature_idx"] == f]).astype(np.float64)
        for f in range(features)
    )


def _fill(grid: np.ndarray, nodes: np.ndarray, thresholds: tuple[np.ndarray, ...]) -> None:
    """Write one tree's value into every cell of ``grid``: each leaf fills its rectangle.

    A node's rectangle is a range of cells per feature; a split on feature f at the
    threshold with index j sends the cells ≤ j left and the rest right. (The node
    fields are read as lists first: a structured array's items are slow to index.)
    """
    leaf, value, feature_of = (nodes[f].tolist() for f in ("is_leaf", "value", "feature_idx"))
    left_of, right_of = nodes["left"].tolist(), nodes["right"].tolist()
    cut_of = np.zeros(len(nodes), dtype=np.intp)
    for feature, cuts in enumerate(thresholds):
        split_here = (nodes["is_leaf"] == 0) & (nodes["feature_idx"] == feature)
        cut_of[split_here] = np.searchsorted(cuts, nodes["num_threshold"][split_here]) + 1
    cut_list = cut_of.tolist()
    stack = [(0, tuple((0, len(cuts) + 1) for cuts in thresholds))]
    while stack:
        index, box = stack.pop()
        if leaf[index]:
            grid[tuple(slice(lo, hi) for lo, hi in box)] = value[index]
            continue
        feature, cut = feature_of[index], cut_list[index]
        lo, hi = box[feature]
        left = box[:feature] + ((lo, min(hi, cut)),) + box[feature + 1 :]
        right = box[:feature] + ((max(lo, cut), hi),) + box[feature + 1 :]
        stack += [(left_of[index], left), (right_of[index], right)]
