"""The ``sample`` query: which draw each kind of sample is, and the statistics of the draw.

The draws themselves are draws.py's (the worker's own samplers, not DoWhy's loops).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ..columns import ColumnKind, encode_binary, float64_bytes
from ..errors import invalid_params
from .dowhy_api import seed_global
from .draws import counterfactual_samples, interventional_samples
from .fitting import FittedModel, dowhy_errors
from .frames import decode_values
from .interventions import Intervention
from .mechanisms import require_invertible


def draw(
    model: FittedModel,
    kind: str,
    interventions: list[Intervention],
    num_samples: int,
    observed: pd.DataFrame | None,
    seed: int,
) -> pd.DataFrame:
    """The samples for ``kind``; all randomness comes from ``seed``.

    Observational samples are the one-pass sampler without interventions: the same calls
    in the same order as ``gcm.draw_samples``, so the same seed gives DoWhy's very draw.
    Interventional samples on ``observed`` rows are ``gcm.interventional_samples(…,
    observed_data=…)``: one per row (``num_samples`` is not used), the rows' values where
    the interventions do not reach, the reached nodes redrawn in topological order.
    """
    seed_global(seed)
    with dowhy_errors("sampling"):
        if kind != "counterfactual":
            return interventional_samples(
                model.scm, interventions, model.kinds, num_samples, observed=observed
            )
        require_invertible(model.scm, model.graph.nodes, "counterfactual", "every non-root node")
        return counterfactual_samples(model.scm, interventions, model.kinds, observed)


def check_kind(kind: str, interventions: list[Intervention], observed: Any) -> None:
    """What each kind of sample needs (the kind itself is checked at the boundary)."""
    if kind == "observational" and interventions:
        raise invalid_params("interventions", "observational sampling takes no interventions")
    if kind != "observational" and not interventions:
        raise invalid_params("interventions", f"{kind} sampling needs at least one intervention")
    if kind == "counterfactual" and observed is None:
        raise invalid_params("observed", "counterfactual sampling needs observed rows")
    if kind == "observational" and observed is not None:
        raise invalid_params(
            "observed", "observed rows are for interventional and counterfactual sampling"
        )


def node_columns(
    samples: pd.DataFrame, kinds: dict[str, ColumnKind], nodes: list[str]
) -> dict[str, np.ndarray | list[Any]]:
    """Each node's draws: numbers stay an array (statistics and binary blocks read it),
    other kinds become their JSON values once, for both their frequencies and the samples."""
    return {
        node: values if kinds[node] == "numeric" else decode_values(values, kinds[node])
        for node in nodes
        for values in [samples[node].to_numpy()]
    }


def node_statistics(
    columns: dict[str, np.ndarray | list[Any]], kinds: dict[str, ColumnKind]
) -> dict[str, dict[str, Any]]:
    return {node: statistics(values, kinds[node]) for node, values in columns.items()}


def encode_samples(
    columns: dict[str, np.ndarray | list[Any]], kinds: dict[str, ColumnKind], binary: bool
) -> dict[str, Any]:
    """The samples in the line: numeric columns as base64 blocks (``binary``) or JSON
    lists; other kinds are JSON values in every encoding."""
    return {node: _sample_column(values, kinds[node], binary) for node, values in columns.items()}


def _sample_column(values: np.ndarray | list[Any], kind: ColumnKind, binary: bool) -> Any:
    if kind != "numeric":
        return values
    return encode_binary(np.asarray(values)) if binary else decode_values(np.asarray(values), kind)


def attached_samples(
    columns: dict[str, np.ndarray | list[Any]], kinds: dict[str, ColumnKind]
) -> tuple[dict[str, Any], list[memoryview]]:
    """The samples with each numeric column as an attached part: the line names it by its
    index, the part is its float64 bytes (its own buffer where it can be)."""
    samples: dict[str, Any] = {}
    parts: list[memoryview] = []
    for node, values in columns.items():
        if kinds[node] == "numeric":
            samples[node] = {"dtype": "float64", "attached": len(parts)}
            parts.append(float64_bytes(np.asarray(values)))
        else:
            samples[node] = values
    return samples, parts


def statistics(values: np.ndarray | list[Any], kind: ColumnKind) -> dict[str, Any]:
    if kind != "numeric":
        counts = Counter(values)
        return {
            "count": len(values),
            "frequencies": {str(k): v / len(values) for k, v in counts.items()},
            "mode": counts.most_common(1)[0][0] if counts else None,
        }
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {"count": 0}
    q05, q50, q95 = np.quantile(array, [0.05, 0.5, 0.95])
    return {
        "count": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "q05": float(q05),
        "q50": float(q50),
        "q95": float(q95),
        "min": float(array.min()),
        "max": float(array.max()),
    }

