"""The copy behind ``scm_worker.lean_grower``: sklearn's ``TreeGrower`` with its Python trimmed.

``LeanTreeGrower`` does ``TreeGrower``'s steps, in the same order, on the same compiled
parts (``split_indices``, the histogram builders, ``find_node_split``), with slotted nodes,
no timers, the predictor's record array built in one call and the root histogram read
with ``numpy.frombuffer``. Constrained trees (monotonic or interaction constraints) and
categorical splits go to sklearn's own methods. It imports sklearn's private modules, so
only ``lean_grower.install`` imports it, once it has checked the release.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Final

import numpy as np
from sklearn.ensemble._hist_gradient_boosting import grower
from sklearn.ensemble._hist_gradient_boosting.common import (
    HISTOGRAM_DTYPE,
    PREDICTOR_RECORD_DTYPE,
    X_BITSET_INNER_DTYPE,
)
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

_INF: Final = float("inf")


class Node:
    """``grower.TreeNode`` with slots and positional construction: what every reader of a
    grower's nodes (the predictor fill, ``_update_raw_predictions``) looks at."""

    __slots__ = (
        "allowed_features",
        "children_lower_bound",
        "children_upper_bound",
        "depth",
        "histograms",
        "interaction_cst_indices",
        "is_leaf",
        "left_child",
        "n_samples",
        "partition_start",
        "partition_stop",
        "right_child",
        "sample_indices",
        "split_info",
        "sum_gradients",
        "sum_hessians",
        "value",
    )

    def __init__(
        self, depth: int, sample_indices: Any, partition_start: int, partition_stop: int,
        sum_gradients: float, sum_hessians: float, value: float,
    ) -> None:
        self.depth = depth
        self.sample_indices = sample_indices
        self.n_samples = sample_indices.shape[0]
        self.sum_gradients = sum_gradients
        self.sum_hessians = sum_hessians
        self.value = value
        self.is_leaf = False
        self.allowed_features = None
        self.interaction_cst_indices = None
        self.children_lower_bound = -_INF
        self.children_upper_bound = _INF
        self.split_info: Any = None
        self.left_child: Node | None = None
        self.right_child: Node | None = None
        self.histograms: Any = None
        self.partition_start = partition_start
        self.partition_stop = partition_stop

    def __lt__(self, other: Node) -> bool:
        """The heap's order, exactly ``TreeNode``'s: higher gain first, ties as sklearn's."""
        return bool(self.split_info.gain > other.split_info.gain)


class LeanTreeGrower(grower.TreeGrower):  # type: ignore[misc]
    """``TreeGrower`` with the Python of its unconstrained path trimmed; same trees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lean = kwargs.get("interaction_cst") is None
        super().__init__(*args, **kwargs)  # grows the root, through _initialize_root below
        self._lean = self._lean and not self.with_monotonic_cst

    def _initialize_root(self) -> None:
        if self.interaction_cst is not None:
            super()._initialize_root()
            return
        histograms = self.histogram_builder.compute_histograms_brute(self.splitter.partition, None)
        n_samples = self.X_binned.shape[0]
        # sklearn reads feature 0's histogram through np.asarray, which parses its format
        histogram = np.frombuffer(histograms[0], dtype=HISTOGRAM_DTYPE)
        sum_gradients = histogram["sum_gradients"].sum()
        if self.histogram_builder.hessians_are_constant:
            sum_hessians = self.histogram_builder.hessians[0] * n_samples
        else:
            sum_hessians = histogram["sum_hessians"].sum()
        self.root = Node(0, self.splitter.partition, 0, n_samples, sum_gradients, sum_hessians, 0)
        if (
            self.root.n_samples < 2 * self.min_samples_leaf
            or sum_hessians < self.splitter.min_hessian_to_split
        ):
            self._finalize_leaf(self.root)
            return
        self.root.histograms = histograms
        self._compute_best_split_and_push(self.root)

    def _compute_best_split_and_push(self, node: Any) -> None:
        node.split_info = self.splitter.find_node_split(
            node.n_samples, node.histograms, node.sum_gradients, node.sum_hessians, node.value,
            node.children_lower_bound, node.children_upper_bound, node.allowed_features,
        )
        if node.split_info.gain <= 0:  # no valid split
            self._finalize_leaf(node)
        else:
            heappush(self.splittable_nodes, node)

    def split_next(self) -> tuple[Any, Any]:
        """``TreeGrower.split_next`` without constraints, timers or keyword construction."""
        if not self._lean:
            return super().split_next()  # type: ignore[no-any-return]
        node = heappop(self.splittable_nodes)
        split = node.split_info
        left_indices, right_indices, right_child_pos = self.splitter.split_indices(
            split, node.sample_indices
        )
        depth = node.depth + 1
        n_leaf_nodes = len(self.finalized_leaves) + len(self.splittable_nodes) + 2
        left = Node(
            depth, left_indices, node.partition_start, node.partition_start + right_child_pos,
            split.sum_gradient_left, split.sum_hessian_left, split.value_left,
        )
        right = Node(
            depth, right_indices, left.partition_stop, node.partition_stop,
            split.sum_gradient_right, split.sum_hessian_right, split.value_right,
        )
        node.left_child, node.right_child = left, right
        if not self.has_missing_values[split.feature_idx]:
            # predict() sends missing values to the child that saw more samples
            split.missing_go_to_left = left.n_samples > right.n_samples
        self.n_nodes += 2
        self.n_categorical_splits += split.is_categorical
        if self.max_leaf_nodes is not None and n_leaf_nodes == self.max_leaf_nodes:
            self._finalize_leaf(left)
            self._finalize_leaf(right)
            self._finalize_splittable_nodes()
            return left, right
        if self.max_depth is not None and depth == self.max_depth:
            self._finalize_leaf(left)
            self._finalize_leaf(right)
            return left, right
        for child in (left, right):
            if child.n_samples < self.min_samples_leaf * 2:
                self._finalize_leaf(child)
        if not (left.is_leaf and right.is_leaf):
            self._split_children(node, left, right)
        node.histograms = None
        return left, right

    def _split_children(self, node: Node, left: Node, right: Node) -> None:
        """Histograms for both children (brute force on the smaller, subtraction for the
        larger), then each non-leaf child's best split, left first."""
        smallest, largest = (left, right) if left.n_samples < right.n_samples else (right, left)
        builder = self.histogram_builder
        smallest.histograms = builder.compute_histograms_brute(smallest.sample_indices, None)
        largest.histograms = builder.compute_histograms_subtraction(
            node.histograms, smallest.histograms, None
        )
        node.histograms = None
        for child in (left, right):
            if not child.is_leaf:
                self._compute_best_split_and_push(child)
        for child in (left, right):
            if child.is_leaf:
                child.histograms = None

    def make_predictor(self, binning_thresholds: Any) -> Any:
        """The predictor's node records, in sklearn's depth-first order, built in one call."""
        if self.n_categorical_splits:
            return super().make_predictor(binning_thresholds)
        records: list[tuple[Any, ...]] = []
        _collect_records(self.root, records, binning_thresholds, self.n_bins_non_missing)
        no_bitsets = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)
        return TreePredictor(
            np.array(records, dtype=PREDICTOR_RECORD_DTYPE), no_bitsets, no_bitsets.copy()
        )


def _collect_records(
    node: Any, records: list[tuple[Any, ...]], thresholds: Any, n_bins_non_missing: Any
) -> None:
    """``grower._fill_predictor_arrays`` as tuples in ``PREDICTOR_RECORD_DTYPE``'s field
    order: value, count, feature_idx, num_threshold, missing_go_to_left, left, right, gain,
    depth, is_leaf, bin_threshold, is_categorical, bitset_idx (numerical splits only)."""
    split = node.split_info
    gain = -1 if split is None else split.gain
    if node.is_leaf:
        records.append((node.value, node.n_samples, 0, 0.0, 0, 0, 0, gain, node.depth, 1, 0, 0, 0))
        return
    feature, bin_idx = split.feature_idx, split.bin_idx
    # a split on the last non-missing bin is a split on missing values: all go right
    last_bin = bin_idx == n_bins_non_missing[feature] - 1
    threshold = np.inf if last_bin else thresholds[feature][bin_idx]
    position = len(records)
    records.append(())
    _collect_records(node.left_child, records, thresholds, n_bins_non_missing)
    records[position] = (
        node.value, node.n_samples, feature, threshold, split.missing_go_to_left,
        position + 1, len(records), gain, node.depth, 0, bin_idx, split.is_categorical, 0,
    )
    _collect_records(node.right_child, records, thresholds, n_bins_non_missing)
