"""Typed views of the worker's results; ``raw`` keeps the full wire dict."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


class AttachedResult(dict[str, Any]):
    """A result whose reply came with attached parts (``"attached"`` sample columns).

    It is the plain JSON result, where a column reads ``{"dtype", "attached": i}``;
    ``attached[i]`` is that column, an ``array('d')`` read straight from the wire.
    """

    def __init__(self, result: dict[str, Any], attached: list[array[float]]) -> None:
        super().__init__(result)
        self.attached = attached


@dataclass(frozen=True)
class FitResult:
    model_id: str
    status: str
    scm: dict[str, Any]
    validation: dict[str, Any]
    warnings: list[dict[str, Any]]
    metadata: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> FitResult:
        return cls(
            model_id=result["model_id"],
            status=result["status"],
            scm=result["scm"],
            validation=result["validation"],
            warnings=result.get("warnings", []),
            metadata=result.get("metadata", {}),
            raw=result,
        )

    @property
    def passed(self) -> bool:
        return bool(self.validation.get("passed"))

    @property
    def r2_scores(self) -> dict[str, float]:
        return dict(self.validation.get("r2_scores", {}))

    @property
    def mean_r2(self) -> float | None:
        return self.validation.get("mean_r2")

    def mechanism(self, node: str) -> dict[str, Any]:
        return dict(self.scm["mechanisms"][node])

    def coefficients(self, node: str) -> dict[str, float]:
        """Parent → coefficient for a linear node with numeric parents."""
        mechanism = self.mechanism(node)
        if mechanism.get("type") != "linear" or mechanism["params"].get("encoded_parents"):
            raise ValueError(
                f"node {node!r} has no per-parent coefficients ({mechanism.get('type')})"
            )
        return dict(zip(mechanism["parents"], mechanism["params"]["coefficients"], strict=True))


@dataclass(frozen=True)
class SampleResult:
    """A ``sample`` reply. The drawn values come two ways:

    ``columns`` holds them as they arrived: a numeric column the worker sent binary or
    attached is an ``array('d')`` with NaN where a value is missing, any other a list.
    ``samples`` holds them as lists with None for missing, as in JSON, made on first use:
    at a million rows that conversion costs more than the reply itself, so bulk readers
    take ``columns`` (``memoryview(column)`` or ``numpy.frombuffer(column)`` without a
    copy). ``raw`` is the reply's JSON as it came (base64 blocks, or attached columns'
    part numbers): plain JSON, like every result's ``raw``; ``plain()`` is the reply with
    the samples as lists.
    """

    statistics: dict[str, dict[str, Any]]
    columns: dict[str, Sequence[Any]] | None
    metadata: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wire(
        cls, result: dict[str, Any], columns: dict[str, Sequence[Any]] | None = None
    ) -> SampleResult:
        """``columns``: the reply's sample columns decoded (binary blocks as arrays)."""
        if columns is None:
            columns = result.get("samples")
        return cls(result["statistics"], columns, result.get("metadata", {}), result)

    def plain(self) -> dict[str, Any]:
        """The reply as plain JSON values, its samples as lists (``scm sample --json``)."""
        return {**self.raw, "samples": self.samples} if self.columns is not None else self.raw

    @cached_property
    def samples(self) -> dict[str, list[Any]] | None:
        if self.columns is None:
            return None
        return {node: as_list(values) for node, values in self.columns.items()}

    def mean(self, node: str) -> float:
        return float(self.statistics[node]["mean"])


def as_list(values: Sequence[Any]) -> list[Any]:
    """NaN in a binary column is what null is in a JSON list: None."""
    if isinstance(values, list):
        return values
    if not isinstance(values, array):
        return list(values)
    listed: list[Any] = values.tolist()
    if math.isnan(sum(values)):  # rare: only then look at every value
        listed = [None if math.isnan(v) else v for v in listed]
    return listed


@dataclass(frozen=True)
class FalsifyResult:
    """DoWhy's graph falsification (``falsify``, or ``evaluate(falsify_graph=True)``):
    ``falsified`` and ``falsifiable`` are None when the graph implies nothing to test."""

    falsified: bool | None
    falsifiable: bool | None
    p_value: float
    significance_level: float
    #: the permuted graphs DoWhy tested: at most n! for n nodes
    permutations: int
    #: the given graph's local-Markov tests and how many the rows violate
    tests: int
    violations: int
    #: the violations of each permuted graph, in the order tested
    permutation_violations: list[int]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> FalsifyResult:
        local = result["local_markov"]
        return cls(
            result["falsified"], result["falsifiable"], result["p_value"],
            result["significance_level"], result["permutations"], local["tests"],
            local["violations"], local["permutation_violations"], result,
        )


@dataclass(frozen=True)
class EvaluateResult:
    """``evaluate``: the model's scores on the rows, and the parts of DoWhy's
    ``evaluate_causal_model`` that ran (None when not asked for)."""

    r2_scores: dict[str, float]
    mean_r2: float | None
    passed: bool
    failed_nodes: list[str]
    nodes: dict[str, dict[str, float]]
    raw: dict[str, Any] = field(repr=False)
    #: node → {"root", "crps", "kl_divergence", "mse", "nmse", "r2", "f1", "baselines"?}
    mechanisms: dict[str, dict[str, Any]] | None = None
    overall_kl_divergence: float | None = None
    invertibility: dict[str, dict[str, Any]] | None = None
    falsification: FalsifyResult | None = None

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> EvaluateResult:
        falsification = result.get("falsification")
        return cls(
            result["r2_scores"], result["mean_r2"], result["passed"], result["failed_nodes"],
            result["nodes"], result, result.get("mechanisms"),
            result.get("overall_kl_divergence"), result.get("invertibility"),
            None if falsification is None else FalsifyResult.from_wire(falsification),
        )


@dataclass(frozen=True)
class EffectResult:
    effect: float
    interval: tuple[float, float] | None
    target: str
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> EffectResult:
        interval = result.get("interval")
        return cls(result["effect"], bounds(interval) if interval else None, result["target"],
                   result)


def bounds(pair: Any) -> tuple[float, float]:
    return float(pair[0]), float(pair[1])


def interval_map(wire: dict[str, Any] | None) -> dict[str, tuple[float, float]] | None:
    """``{node: [lo, hi]}`` as tuples; None when no interval was asked for."""
    return None if wire is None else {node: bounds(pair) for node, pair in wire.items()}


def row_intervals(wire: dict[str, Any] | None) -> dict[str, list[tuple[float, float]]] | None:
    """``{node: [[lo, hi] per row]}`` as tuples; None when no interval was asked for."""
    if wire is None:
        return None
    return {node: [bounds(pair) for pair in rows] for node, rows in wire.items()}


@dataclass(frozen=True)
class Attribution:
    """A per-node answer: arrow strengths, influence, or distribution-change attributions;
    asked with ``confidence``, ``values`` are the bootstrap's medians and ``intervals``
    their ``(lo, hi)`` per node."""

    target: str
    values: dict[str, float]
    raw: dict[str, Any] = field(repr=False)
    intervals: dict[str, tuple[float, float]] | None = None

    @classmethod
    def from_wire(cls, result: dict[str, Any], field_name: str) -> Attribution:
        return cls(result["target"], result[field_name], result,
                   interval_map(result.get("intervals")))

    def ranked(self) -> list[tuple[str, float]]:
        """Nodes by decreasing absolute value."""
        return sorted(self.values.items(), key=lambda kv: abs(kv[1]), reverse=True)


@dataclass(frozen=True)
class AnomalyResult:
    """Per-row anomaly scores and attributions; asked with ``confidence``, their medians,
    with a ``(lo, hi)`` per node and row in ``intervals`` (attributions) and
    ``score_intervals``."""

    target: str
    scores: dict[str, list[float]]
    attributions: dict[str, list[float]]
    raw: dict[str, Any] = field(repr=False)
    intervals: dict[str, list[tuple[float, float]]] | None = None
    score_intervals: dict[str, list[tuple[float, float]]] | None = None

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> AnomalyResult:
        return cls(result["target"], result["scores"], result["attributions"], result,
                   row_intervals(result.get("intervals")),
                   row_intervals(result.get("score_intervals")))

    def main_cause(self, row: int = 0) -> str:
        """The node with the largest attribution for one anomalous row."""
        return max(self.attributions, key=lambda node: self.attributions[node][row])
