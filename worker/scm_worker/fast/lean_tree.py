"""The copy behind ``scm_worker.lean_grower``: sklearn's ``TreeGrower`` with its Python trimmed.

``LeanTreeGrower`` does ``TreeGrower``'s steps, in the same order, on the same compiled
parts (``split_indices``, the histogram builders, ``find_node_split``), with slotted nodes,
no timers, a set-up that checks for constraints with one ``any()``, the predictor's
records packed by one ``struct`` call and the root histogram read with
``numpy.frombuffer``. Constrained trees (monotonic or interaction constraints) and
categorical splits go to sklearn's own methods. It imports sklearn's private modules, so
only ``lean_grower.install`` imports it, once it has checked the release.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import numbers
import struct
from heapq import heappop, heappush
from typing import Any, Final

import numpy as np
from sklearn.ensemble._hist_gradient_boosting import grower
from sklearn.ensemble._hist_gradient_boosting.common import (
    HISTOGRAM_DTYPE,
    PREDICTOR_RECORD_DTYPE,
    X_BITSET_INNER_DTYPE,
)
from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.ensemble._hist_gradient_boosting.splitting import Splitter
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

_INF: Final = float("inf")
#: ``TreeGrower``'s own default generator, the one object its signature holds
_SKLEARN_DEFAULT_RNG: Final = inspect.signature(grower.TreeGrower).parameters["rng"].default


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

    def __init__(
        self, X_binned: Any, gradients: Any, hessians: Any, max_leaf_nodes: Any = None,
        max_depth: Any = None, min_samples_leaf: int = 20, min_gain_to_split: float = 0.0,
        min_hessian_to_split: float = 1e-3, n_bins: int = 256, n_bins_non_missing: Any = None,
        has_missing_values: Any = False, is_categorical: Any = None, monotonic_cst: Any = None,
        interaction_cst: Any = None, l2_regularization: float = 0.0,
        feature_fraction_per_split: float = 1.0, rng: Any = _SKLEARN_DEFAULT_RNG,
        shrinkage: float = 1.0, n_threads: Any = None,
    ) -> None:
        """``TreeGrower.__init__`` with the same arguments, attributes and errors. Its numpy
        calls checking for constraints were two fifths of a tree's set-up (17 of 42 µs):
        here no constraint (``NO_CST`` is 0) is one ``any()`` and skips the other check."""
        self._validate_parameters(X_binned, min_gain_to_split, min_hessian_to_split)
        n_threads = _openmp_effective_n_threads(n_threads)
        n_features = X_binned.shape[1]
        n_bins_non_missing, has_missing_values, is_categorical, monotonic_cst = _per_feature(
            n_features, n_bins, n_bins_non_missing, has_missing_values, is_categorical,
            monotonic_cst,
        )
        self.with_monotonic_cst = monotonic_cst.any()
        if self.with_monotonic_cst and np.any(
            np.logical_and(is_categorical == 1, monotonic_cst != 0)
        ):
            raise ValueError("Categorical features cannot have monotonic constraints.")
        hessians_are_constant = hessians.shape[0] == 1
        missing_values_bin_idx = n_bins - 1
        self.histogram_builder = HistogramBuilder(
            X_binned, n_bins, gradients, hessians, hessians_are_constant, n_threads
        )
        self.splitter = Splitter(
            X_binned=X_binned, n_bins_non_missing=n_bins_non_missing,
            missing_values_bin_idx=missing_values_bin_idx, has_missing_values=has_missing_values,
            is_categorical=is_categorical, monotonic_cst=monotonic_cst,
            l2_regularization=l2_regularization, min_hessian_to_split=min_hessian_to_split,
            min_samples_leaf=min_samples_leaf, min_gain_to_split=min_gain_to_split,
            hessians_are_constant=hessians_are_constant,
            feature_fraction_per_split=feature_fraction_per_split, rng=rng, n_threads=n_threads,
        )
        self.X_binned = X_binned
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.min_gain_to_split = min_gain_to_split
        self.n_bins_non_missing = n_bins_non_missing
        self.missing_values_bin_idx = missing_values_bin_idx
        self.has_missing_values = has_missing_values
        self.is_categorical = is_categorical
        self.monotonic_cst = monotonic_cst
        self.interaction_cst = interaction_cst
        self.l2_regularization = l2_regularization
        self.shrinkage = shrinkage
        self.n_features = n_features
        self.n_threads = n_threads
        self.splittable_nodes: list[Any] = []
        self.finalized_leaves: list[Any] = []
        self.total_find_split_time = 0.0  # sklearn's timers, read by verbose fits only
        self.total_compute_hist_time = 0.0
        self.total_apply_split_time = 0.0
        self.n_categorical_splits = 0
        self._lean = interaction_cst is None and not self.with_monotonic_cst
        self._initialize_root()
        self.n_nodes = 1

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
        """The predictor's node records, in sklearn's depth-first order, packed in one call."""
        if self.n_categorical_splits or _RECORD_FORMAT is None:
            return super().make_predictor(binning_thresholds)
        fields: list[Any] = []
        _collect_records(self.root, fields, binning_thresholds, self.n_bins_non_missing)
        packed = _records_struct(len(fields) // _N_FIELDS).pack(*fields)
        nodes = np.frombuffer(bytearray(packed), dtype=PREDICTOR_RECORD_DTYPE)
        no_bitsets = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)
        return TreePredictor(nodes, no_bitsets, no_bitsets.copy())


def _per_feature(
    n_features: int, n_bins: int, n_bins_non_missing: Any, has_missing_values: Any,
    is_categorical: Any, monotonic_cst: Any,
) -> tuple[Any, Any, Any, Any]:
    """``TreeGrower.__init__``'s per-feature arrays from its arguments, with the same dtypes
    and defaults; no constraint is ``np.zeros`` (``MonotonicConstraint.NO_CST`` is 0)."""
    if n_bins_non_missing is None:
        n_bins_non_missing = n_bins - 1
    if isinstance(n_bins_non_missing, numbers.Integral):
        n_bins_non_missing = np.array([n_bins_non_missing] * n_features, dtype=np.uint32)
    else:
        n_bins_non_missing = np.asarray(n_bins_non_missing, dtype=np.uint32)
    if isinstance(has_missing_values, bool):
        has_missing_values = [has_missing_values] * n_features
    return (
        n_bins_non_missing,
        np.asarray(has_missing_values, dtype=np.uint8),
        np.zeros(n_features, np.uint8) if is_categorical is None
        else np.asarray(is_categorical, dtype=np.uint8),
        np.zeros(n_features, np.int8) if monotonic_cst is None
        else np.asarray(monotonic_cst, dtype=np.int8),
    )


def _struct_format(dtype: np.dtype[Any]) -> str | None:
    """The ``struct`` format of one record of ``dtype``, field by field, or None when the
    fields are not laid out back to back in order (padding) or one has no little-endian
    code here."""
    codes = {"<f8": "d", "<u4": "I", "<i8": "q", "|u1": "B"}
    fields = [dtype.fields[name][:2] for name in dtype.names or ()]
    back_to_back = list(itertools.accumulate((f.itemsize for f, _ in fields), initial=0))
    if [offset for _, offset in fields] != back_to_back[:-1] or back_to_back[-1] != dtype.itemsize:
        return None
    if any(field.str not in codes for field, _ in fields):
        return None
    return "".join(codes[field.str] for field, _ in fields)


#: a predictor record as ``struct`` packs it; None sends make_predictor to sklearn's
_RECORD_FORMAT: Final = _struct_format(PREDICTOR_RECORD_DTYPE)
_N_FIELDS: Final = len(PREDICTOR_RECORD_DTYPE.names or ())
_PLACEHOLDER: Final = (0,) * _N_FIELDS


@functools.lru_cache(maxsize=256)
def _records_struct(n_records: int) -> struct.Struct:
    """Packs ``n_records`` records at once: one call per tree instead of one per field."""
    return struct.Struct("<" + (_RECORD_FORMAT or "") * n_records)


def _collect_records(
    node: Any, fields: list[Any], thresholds: Any, n_bins_non_missing: Any
) -> None:
    """``grower._fill_predictor_arrays`` as one flat list, record after record, each in
    ``PREDICTOR_RECORD_DTYPE``'s field order: value, count, feature_idx, num_threshold,
    missing_go_to_left, left, right, gain, depth, is_leaf, bin_threshold, is_categorical,
    bitset_idx (numerical splits only)."""
    split = node.split_info
    gain = -1 if split is None else split.gain
    if node.is_leaf:
        fields += (node.value, node.n_samples, 0, 0.0, 0, 0, 0, gain, node.depth, 1, 0, 0, 0)
        return
    feature, bin_idx = split.feature_idx, split.bin_idx
    # a split on the last non-missing bin is a split on missing values: all go right
    last_bin = bin_idx == n_bins_non_missing[feature] - 1
    threshold = _INF if last_bin else thresholds[feature][bin_idx]
    start = len(fields)
    fields += _PLACEHOLDER
    _collect_records(node.left_child, fields, thresholds, n_bins_non_missing)
    fields[start:start + _N_FIELDS] = (
        node.value, node.n_samples, feature, threshold, split.missing_go_to_left,
        start // _N_FIELDS + 1, len(fields) // _N_FIELDS, gain, node.depth, 0, bin_idx,
        split.is_categorical, 0,
    )
    _collect_records(node.right_child, fields, thresholds, n_bins_non_missing)
