"""Observational, interventional and counterfactual samples from a fitted model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from dowhy.graph import get_ordered_predecessors

from .columns import ColumnKind, encode_binary
from .dowhy_private import evaluate_intervention, validate_causal_dag
from .errors import invalid_params
from .fitting import FittedModel, dowhy_errors
from .frames import decode_values
from .interventions import Intervention, to_dowhy
from .mechanisms import require_invertible


def draw(
    model: FittedModel,
    kind: str,
    interventions: list[Intervention],
    num_samples: int,
    observed: pd.DataFrame | None,
    seed: int,
) -> pd.DataFrame:
    """Run the DoWhy query for ``kind``; all randomness comes from ``seed``."""
    gcm.util.general.set_random_seed(seed)
    as_dowhy = to_dowhy(interventions, model.kinds)
    with dowhy_errors("sampling"):
        if kind == "observational":
            return gcm.draw_samples(model.scm, num_samples)
        if kind == "interventional":
            return interventional_samples(model.scm, as_dowhy, num_samples)
        require_invertible(model.scm, model.graph.nodes, "counterfactual", "every non-root node")
        return gcm.counterfactual_samples(model.scm, as_dowhy, observed_data=observed)


def interventional_samples(
    scm: gcm.StructuralCausalModel, interventions: dict[str, Callable[[Any], Any]], num_samples: int
) -> pd.DataFrame:
    """DoWhy's interventional distribution, drawing each node once.

    ``gcm.interventional_samples`` first samples the whole model observationally, then
    redraws every node downstream of an intervention (fresh noise, intervened parents),
    discarding the first draw of those nodes: intervening on a root samples the model
    twice. Here each node is drawn once, in topological order, from its mechanism given
    the parent values drawn so far, and the intervention is applied to the draw as DoWhy
    applies it (``dowhy_private.evaluate_intervention``). Nodes the interventions do not reach are
    drawn as DoWhy's observational pass draws them, so the joint distribution is the
    same; the random stream is not (a seed reproduces this function, not DoWhy's).
    """
    validate_causal_dag(scm.graph)
    order = list(nx.topological_sort(scm.graph))
    samples = pd.DataFrame(index=pd.RangeIndex(num_samples))
    for node in order:
        mechanism = scm.causal_mechanism(node)
        parents = get_ordered_predecessors(scm.graph, node)
        if parents:
            drawn = mechanism.draw_samples(samples[parents].to_numpy())
        else:
            drawn = mechanism.draw_samples(num_samples)
        # DataFrame columns, as DoWhy keeps them: mixed parent kinds stay an object matrix.
        samples[node] = evaluate_intervention(node, interventions, np.asarray(drawn).reshape(-1))
    return samples[order]


def check_kind(kind: str, interventions: list[Intervention], observed: Any) -> None:
    """What each kind of sample needs (the kind itself is checked at the boundary)."""
    if kind == "observational" and interventions:
        raise invalid_params("interventions", "observational sampling takes no interventions")
    if kind != "observational" and not interventions:
        raise invalid_params("interventions", f"{kind} sampling needs at least one intervention")
    if kind == "counterfactual" and observed is None:
        raise invalid_params("observed", "counterfactual sampling needs observed rows")
    if kind != "counterfactual" and observed is not None:
        raise invalid_params("observed", "observed rows are only used for counterfactual sampling")


def summarise_samples(
    samples: pd.DataFrame, kinds: dict[str, ColumnKind], nodes: list[str], return_samples: bool,
    binary: bool = False,
) -> dict[str, Any]:
    """Statistics per node, and the samples themselves when asked (numeric ones binary
    if ``binary``)."""
    columns = {node: _column(samples[node].to_numpy(), kinds[node]) for node in nodes}
    result: dict[str, Any] = {
        "statistics": {node: statistics(columns[node], kinds[node]) for node in nodes}
    }
    if return_samples:
        result["samples"] = {
            node: _sample_column(columns[node], kinds[node], binary) for node in nodes
        }
    return result


def _column(values: np.ndarray, kind: ColumnKind) -> np.ndarray | list[Any]:
    """Numbers stay an array (statistics and binary blocks read it); other kinds become
    their JSON values once, for both their frequencies and the samples."""
    return values if kind == "numeric" else decode_values(values, kind)


def _sample_column(values: np.ndarray | list[Any], kind: ColumnKind, binary: bool) -> Any:
    if kind != "numeric":
        return values
    return encode_binary(np.asarray(values)) if binary else decode_values(np.asarray(values), kind)


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

