"""A mechanism's predictions, DoWhy's numbers, looked up where possible.

The samplers (draws.py) call ``predict`` where DoWhy's mechanisms call their prediction
model's ``predict``. For a boosted-tree regressor with few inputs the answer comes from
its lookup table (tree_tables.py), the same floats without walking the trees; for every
other model, and for every model when the gate (``scm_worker.fast``) closes ``tree_tables``,
it is the model's own ``predict``. The queries that run DoWhy's own
functions (arrow strength, influence, anomalies, distribution change) get the same
through ``tabulated``: a view of the model whose mechanisms predict through here.

A table is built once a model has been asked for ``BUILD_AFTER_ROWS`` rows in all: it
costs about what predicting 1,500-3,000 rows directly costs, so a model queried once
for a few rows never pays for one, and a model queried again pays for it once. Tables
live as long as the model object they belong to (a weak mapping): at most
``tree_tables.MAX_CELLS`` floats each (2 MiB), a few KiB for one parent. With two parents
a table is about as big as the model's pickle (350 KB beside 385 KB for a three-node
model), so the model store counts them in its memory budget (``table_bytes``). Each
process builds its own (joblib's children get the wrapped models, not the tables); two
threads asking at once would at worst build one twice.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

import networkx as nx
import numpy as np
from dowhy import gcm
from dowhy.gcm.ml import PredictionModel, SklearnRegressionModel

from .. import fast
from ..fast import tree_tables

log = logging.getLogger(__name__)

#: rows a model must have been asked for, in all, before its table is built
BUILD_AFTER_ROWS = 1000


@dataclass
class _Tabulation:
    """What the worker knows about one prediction model's table."""

    rows_asked: int = 0
    table: tree_tables.TreeTable | None = None
    refused: bool = False


_tabulations: weakref.WeakKeyDictionary[PredictionModel, _Tabulation] = (
    weakref.WeakKeyDictionary()
)


def predict(model: PredictionModel, X: np.ndarray) -> np.ndarray:
    """``model.predict(X)`` as a 2-D column, as DoWhy's models return it: the same numbers."""
    table = _table(model, X)
    if table is not None:
        looked_up = table.lookup(X)
        if looked_up is not None:
            return looked_up.reshape(-1, 1)
    predicted: np.ndarray = np.asarray(model.predict(X))
    return predicted.reshape(-1, 1) if predicted.ndim < 2 else predicted


def _table(model: PredictionModel, X: np.ndarray) -> tree_tables.TreeTable | None:
    """The model's table when it has one or has now earned one; None for numbers it can't
    look up (an object matrix carries categories, which DoWhy's encoders turn into columns)."""
    if not _may_tabulate(model) or X.ndim != 2 or X.dtype.kind not in "fiub":
        return None
    tabulation = _tabulations.setdefault(model, _Tabulation())
    if tabulation.table is None and not tabulation.refused:
        tabulation.rows_asked += len(X)
        if tabulation.rows_asked >= BUILD_AFTER_ROWS:
            _build(model, tabulation)
    return tabulation.table


def table_bytes(scm: gcm.ProbabilisticCausalModel) -> int:
    """The bytes of the lookup tables built so far for ``scm``'s mechanisms."""
    total = 0
    for node in scm.graph.nodes:
        model = getattr(scm.causal_mechanism(node), "prediction_model", None)
        tabulation = _tabulations.get(model) if model is not None else None
        if tabulation is not None and tabulation.table is not None:
            total += tabulation.table.nbytes
    return total


def _may_tabulate(model: PredictionModel) -> bool:
    """Only where the gate opens ``tree_tables`` (it reads sklearn's fitted internals)."""
    return (
        isinstance(model, SklearnRegressionModel)
        and tree_tables.may_build(model.sklearn_model)
        and fast.enabled("tree_tables")
    )


def _build(model: SklearnRegressionModel, tabulation: _Tabulation) -> None:
    started = time.perf_counter()
    sklearn_model: Any = model.sklearn_model
    table = tree_tables.build(sklearn_model)
    tabulation.table, tabulation.refused = table, table is None
    log.debug(
        "lookup table for %s: %s in %.1f ms", type(sklearn_model).__name__,
        "refused (too many cells)" if table is None else f"{table.values.size} cells",
        (time.perf_counter() - started) * 1e3,
    )


Model = TypeVar("Model", bound=gcm.ProbabilisticCausalModel)


def tabulated(scm: Model, graph: nx.DiGraph | None = None) -> Model:
    """``scm`` over a copy of ``graph`` (default: its own), each additive-noise or
    post-nonlinear mechanism rebuilt around its own fitted parts with predictions through
    here. Nothing is refitted or copied but the graph (DoWhy keeps mechanisms in the
    graph's node data, so the original model is never touched); DoWhy's functions see
    the same mechanisms, answer with the same numbers, and clone them (distribution
    change refits clones) into mechanisms that predict through here too.
    """
    view: Model = type(scm)((scm.graph if graph is None else graph).copy())
    for node in view.graph.nodes:
        view.set_causal_mechanism(node, _tabulated(scm.causal_mechanism(node)))
    return view


def _tabulated(mechanism: Any) -> Any:
    """The same mechanism, its prediction model wrapped; others (roots, classifiers,
    discrete additive noise, which rounds its predictions itself) as they are."""
    if type(mechanism) is gcm.AdditiveNoiseModel:
        return gcm.AdditiveNoiseModel(TabulatedPrediction(mechanism.prediction_model),
                                      mechanism.noise_model)
    if type(mechanism) is gcm.PostNonlinearModel:
        return gcm.PostNonlinearModel(TabulatedPrediction(mechanism.prediction_model),
                                      mechanism.noise_model, mechanism.invertible_function)
    return mechanism


class TabulatedPrediction(PredictionModel):  # type: ignore[misc]
    """A DoWhy prediction model whose ``predict`` is ``predictions.predict`` of the one it wraps."""

    def __init__(self, inner: PredictionModel) -> None:
        self.inner = inner

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.inner.fit(X, Y)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict(self.inner, np.asarray(X))

    def clone(self) -> TabulatedPrediction:
        return TabulatedPrediction(self.inner.clone())
