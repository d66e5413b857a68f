"""The gate of the fast paths: the only code that reads or copies upstream private names.

Every module in this package reads or copies a private name of DoWhy, scikit-learn,
joblib/loky or jsonrpcserver; no module outside it does (an import-linter contract and
tests/worker/test_private_names.py hold that). A private name can move in any release,
so each fast path names the upstream releases it was verified on (``VERIFIED``), and runs
only on those. The engine asks ``enabled(name)`` and, when a path is off, runs DoWhy's
and scikit-learn's own public path, which gives the same answers:

- ``pruned_selection`` (selection.py): DoWhy's model selection with candidates that
  cannot win cut short; off, ``dowhy.gcm.auto.select_model`` scores every candidate.
- ``lean_grower`` (lean_grower.py, lean_tree.py): a leaner copy of scikit-learn's
  gradient-boosting tree grower; off, scikit-learn grows its own trees.
- ``tree_tables`` (tree_tables.py): boosted-tree predictions looked up in a table; off,
  the model's own ``predict``.

``SCM_FAST=0`` in the worker's environment turns every one off (to compare, or to rule
them out); ``SCM_LEAN_GROWER=0`` only the lean grower. The versions are read from package
metadata, without importing anything, once per process (warm-up asks first and logs the
outcome; joblib's processes inherit the environment and decide the same way).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..versions import package_version

log = logging.getLogger(__name__)

#: set to "0" to turn every fast path off
SWITCH: Final = "SCM_FAST"

#: per fast path, the upstream releases its private names were verified on
VERIFIED: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "pruned_selection": {"dowhy": ("0.14",)},
    "lean_grower": {"scikit-learn": ("1.7.2",)},
    "tree_tables": {"scikit-learn": ("1.7.2",)},
}

#: a fast path's own switch, beside SWITCH (set to "0" to turn only that one off)
OWN_SWITCH: Final = {"lean_grower": "SCM_LEAN_GROWER"}


@dataclass(frozen=True)
class PathState:
    """Whether a fast path runs in this process, and if not, why."""

    active: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"active": True} if self.active else {"active": False, "reason": self.reason}


def decide(name: str, environ: Mapping[str, str] | None = None) -> PathState:
    """The state of fast path ``name`` for this environment and these installed releases."""
    env = os.environ if environ is None else environ
    if env.get(SWITCH) == "0":
        return PathState(False, f"{SWITCH}=0")
    own = OWN_SWITCH.get(name)
    if own is not None and env.get(own) == "0":
        return PathState(False, f"{own}=0")
    for package, releases in VERIFIED[name].items():
        installed = package_version(package)
        if installed not in releases:
            verified = " or ".join(releases)
            return PathState(False, f"{package} {installed} is not {verified}, as verified")
    return PathState(True)


@functools.cache
def states() -> dict[str, PathState]:
    """Every fast path's state, decided once per process."""
    decided = {name: decide(name) for name in VERIFIED}
    for name, state in decided.items():
        if not state.active:
            log.info("fast path %s is off: %s", name, state.reason)
    return decided


def enabled(name: str) -> bool:
    """Whether fast path ``name`` runs in this process; KeyError for an unknown name."""
    return states()[name].active


def report() -> dict[str, dict[str, object]]:
    """As ``status``, the handshake and ``scm doctor`` show it: each path, active or why not."""
    return {name: state.as_dict() for name, state in states().items()}
