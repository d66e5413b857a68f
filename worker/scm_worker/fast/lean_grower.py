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

It is a copy of private code, so it is imported and installed only on the scikit-learn
release it was copied from (``WRITTEN_FOR``): on any other, sklearn's grower runs unchanged
(whatever became of the private names the copy uses) and the worker logs that once.
``SCM_LEAN_GROWER=0`` in the environment turns it off (to compare, or to rule it out).
The grower's split timers, read only by ``verbose`` fits, stay at zero.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Final

import sklearn

log = logging.getLogger(__name__)

#: the scikit-learn release whose ``grower.py`` ``lean_tree`` copies
WRITTEN_FOR: Final = "1.7.2"
#: set to "0" to keep sklearn's own grower
SWITCH: Final = "SCM_LEAN_GROWER"


@functools.cache
def _warn_other_release() -> None:
    log.warning(
        "scikit-learn %s is not %s: gradient boosting keeps sklearn's own tree grower",
        sklearn.__version__, WRITTEN_FOR,
    )


def install() -> bool:
    """Gradient boosting in this process grows its trees with ``LeanTreeGrower``, when this
    is the scikit-learn release it was copied from and the switch is not off. Idempotent;
    says whether the lean grower is in place."""
    if os.environ.get(SWITCH) == "0":
        return False
    if sklearn.__version__ != WRITTEN_FOR:
        _warn_other_release()
        return False
    from sklearn.ensemble._hist_gradient_boosting import gradient_boosting

    from .lean_tree import LeanTreeGrower

    gradient_boosting.TreeGrower = LeanTreeGrower
    return True
