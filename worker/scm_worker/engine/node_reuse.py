"""Incremental refits: each node's fit kept under a key of exactly its inputs.

A non-root node's fit (``node_fitting.fit_node``) reads nothing but its own and its
ordered parents' columns over the training, held-out and all rows, its seed (derived
from its name: ``node_seed``), the quality, ``linear_tolerance``, its hand-set spec, the
fast paths in place, and the code that fits (scm-worker, DoWhy, scikit-learn, numpy).
``NodeKeys`` digests exactly those, so a fit that finds a node's key kept (store.py) can
take that node's mechanism, held-out predictions and candidates instead of fitting it,
and answer value for value what the full fit would. Anything else (the r2 threshold,
persist, other nodes) changes no node's fit and is not in the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__, fast
from ..checks import FitConfig
from ..columns import ColumnKind
from ..versions import dowhy_version, package_version
from .mechanism_choice import Override

#: the fast paths that run inside a node's fit (node_fitting.fitting_fast_paths)
FIT_FAST_PATHS = ("pruned_selection", "lean_grower")


@dataclass(frozen=True)
class NodeRecord:
    """What a node's fit produced besides its mechanism (kept on the model's ``scm``)."""

    key: str
    candidates: list[dict[str, Any]]  # as the fit result lists them
    val_predicted: np.ndarray  # from the mechanism fitted on the training rows
    override: Override | None
    fast_paths: tuple[str, ...]


class NodeKeys:
    """The keys of one fit's nodes: each column digested once over the split's rows."""

    def __init__(
        self, train: pd.DataFrame, val: pd.DataFrame, data: pd.DataFrame,
        kinds: dict[str, ColumnKind], seed: int, config: FitConfig,
    ) -> None:
        self._rows = (train, val, data)
        self._kinds = kinds
        self._digests: dict[str, str] = {}
        self._shared = {
            "seed": seed,
            "quality": config.quality,
            "linear_tolerance": config.linear_tolerance,
            "fast_paths": {name: fast.enabled(name) for name in FIT_FAST_PATHS},
            "versions": [__version__, dowhy_version(), package_version("scikit-learn"),
                         package_version("numpy")],
        }
        self._config = config

    def key(self, node: str, node_seed: int, parents: list[str]) -> str:
        """The node's key: its inputs, the ordered parents' names and columns included."""
        spec = self._config.mechanism(node)
        header = {
            **self._shared,
            "node": node,
            "node_seed": node_seed,
            "parents": parents,
            "kinds": [self._kinds[name] for name in [node, *parents]],
            "spec": None if spec is None else spec.as_json(),
            "columns": [self._column(name) for name in [node, *parents]],
        }
        text = json.dumps(header, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(b"scm-node\0" + text.encode()).hexdigest()

    def _column(self, name: str) -> str:
        if name not in self._digests:
            digest = hashlib.sha256()
            for rows in self._rows:
                update_values(digest, rows[name].to_numpy())
            self._digests[name] = digest.hexdigest()
        return self._digests[name]


def update_values(digest: Any, values: np.ndarray) -> None:
    """A column's values in canonical bytes: numbers as their raw array, strings as JSON
    (an object array's raw bytes are pointers); dtype and length first, so no two
    different columns run together into the same bytes."""
    if values.dtype.kind == "O":
        payload = json.dumps(values.tolist(), separators=(",", ":")).encode()
    else:
        payload = np.ascontiguousarray(values).tobytes()
    digest.update(f"{values.dtype.str}:{len(payload)}:".encode())
    digest.update(payload)
