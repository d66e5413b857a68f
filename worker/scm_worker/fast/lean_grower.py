"""A leaner copy of scikit-learn's gradient-boosting tree grower: the same trees, faster.

At the sizes the worker fits (hundreds to thousands of rows, a few parents per node),
gradient boosting is about nine tenths of a fit's time. Each of its 100 trees is grown by
``TreeGrower``: compiled histograms and split finding, orchestrated by pure Python. Per
split, that Python builds two ``TreeNode`` objects through keyword arguments and a method
call, times every step for verbose output, and checks monotonic and interaction
constraints that DoWhy never sets. Per tree, its set-up spends a dozen numpy calls on
those constraints, ``make_predictor`` writes every field of every node into a numpy
record one item at a time, and ``_initialize_root`` has numpy parse a buffer-format
string to read one histogram. Together that Python is over a quarter of each boosting
fit.

``lean_tree.LeanTreeGrower`` runs the same compiled steps in the same order with that
Python trimmed (its docstring says how). The fitted trees are the same bytes (tests/worker/
test_lean_grower.py compares them over fuzzed data, regressors and classifiers), so the
models, their scores and every seeded draw are unchanged.

It is a copy of private code, so it is installed only where the gate (``scm_worker.fast``,
path ``lean_grower``) says this scikit-learn is the release it was copied from; elsewhere,
or with ``SCM_FAST=0`` or ``SCM_LEAN_GROWER=0``, sklearn's own grower runs unchanged
(``engine/node_fitting.py`` asks). Importing this module imports none of sklearn's private
names: only ``install`` does. ``installed`` says which grower is in place, so a fit can
report the one that ran. The grower's split timers, read only by ``verbose`` fits, stay
at zero.
"""

from __future__ import annotations

import sys

#: the sklearn module whose ``TreeGrower`` gradient boosting grows its trees with
BOOSTING: str = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"


def install() -> None:
    """Gradient boosting in this process grows its trees with ``LeanTreeGrower``. Idempotent;
    call it only where the gate opens ``lean_grower``."""
    from sklearn.ensemble._hist_gradient_boosting import gradient_boosting

    from .lean_tree import LeanTreeGrower

    gradient_boosting.TreeGrower = LeanTreeGrower


def installed() -> bool:
    """Whether gradient boosting in this process grows its trees with ``LeanTreeGrower``
    (nothing is imported to find out: not installed if the copy was never imported)."""
    boosting, lean = sys.modules.get(BOOSTING), sys.modules.get(f"{__package__}.lean_tree")
    if boosting is None or lean is None:
        return False
    return getattr(boosting, "TreeGrower", None) is getattr(lean, "LeanTreeGrower", None)
