"""Declarative interventions: parsed from JSON, turned into DoWhy's callables here only.

Nothing a request sends is evaluated as code: an intervention is a type, a node and a
number (or a known category), and the callables below are the only ones ever built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..checks import finite_number, require_dict, require_list
from ..columns import ColumnKind, json_type
from ..errors import invalid_params
from .frames import encode_value

TRANSFORMS = ("shift", "scale")


@dataclass(frozen=True)
class Intervention:
    node: str
    type: Literal["hard", "soft"]
    value: Any = None
    transform: str | None = None
    param: float | None = None

    def to_callable(self, kind: ColumnKind) -> Callable[[Any], Any]:
        """DoWhy maps the callable over a node's values one element at a time."""
        if self.type == "hard":
            encoded = encode_value(self.value, kind)
            return lambda _x: encoded
        param = float(self.param)  # type: ignore[arg-type]
        if self.transform == "shift":
            return lambda x: x + param
        return lambda x: x * param

    def constant(self, num_rows: int, kind: ColumnKind) -> np.ndarray:
        """A hard intervention's column: what DoWhy's mapped callable yields, without a
        draw to map it over (the drawn values would be discarded)."""
        return np.full(num_rows, encode_value(self.value, kind))

    def transform_values(self, drawn: np.ndarray) -> np.ndarray:
        """A soft intervention applied to a whole column at once.

        DoWhy maps the callable over the values one by one in Python
        (``np.array(list(map(f, values)))``); the arithmetic is elementwise, so the same
        numbers come out of one numpy operation.
        """
        param = float(self.param)  # type: ignore[arg-type]
        values = np.asarray(drawn)
        return values + param if self.transform == "shift" else values * param


def parse_interventions(
    value: Any,
    kinds: dict[str, ColumnKind],
    categories: dict[str, list[Any]],
    field: str = "interventions",
) -> list[Intervention]:
    items = require_list([] if value is None else value, field)
    parsed = [_parse_one(item, f"{field}[{i}]", kinds, categories) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, intervention in enumerate(parsed):
        if intervention.node in seen:
            raise invalid_params(
                f"{field}[{i}].node", f"node {intervention.node!r} is intervened on twice"
            )
        seen.add(intervention.node)
    return parsed


def _parse_one(
    item: Any, field: str, kinds: dict[str, ColumnKind], categories: dict[str, list[Any]]
) -> Intervention:
    spec = require_dict(item, field)
    node = spec.get("node")
    if node not in kinds:
        raise invalid_params(f"{field}.node", f"unknown node {node!r}")
    kind = spec.get("type", "hard")
    if kind == "hard":
        _require_keys(spec, field, {"type", "node", "value"})
        return Intervention(
            node, "hard", value=_hard_value(spec, field, kinds[node], categories.get(node))
        )
    if kind == "soft":
        _require_keys(spec, field, {"type", "node", "transform", "param"})
        return _soft(spec, field, node, kinds[node])
    raise invalid_params(f"{field}.type", f"must be 'hard' or 'soft', got {kind!r}")


def _require_keys(spec: dict[str, Any], field: str, allowed: set[str]) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise invalid_params(f"{field}.{min(unknown)}", "unknown member")


def _hard_value(spec: dict[str, Any], field: str, kind: ColumnKind, known: list[Any] | None) -> Any:
    if "value" not in spec:
        raise invalid_params(f"{field}.value", "a hard intervention needs a value")
    value = spec["value"]
    if kind == "numeric":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise invalid_params(
                f"{field}.value",
                f"node is numeric: value must be a finite number, got {json_type(value)}",
            )
        return value
    expected = bool if kind == "boolean" else str
    encoded = encode_value(value, kind) if isinstance(value, expected) else None
    if encoded is None or (known is not None and encoded not in known):
        raise invalid_params(
            f"{field}.value",
            f"node is {kind}: value must be one of the observed categories, got {value!r}",
        )
    return value


def _soft(spec: dict[str, Any], field: str, node: str, kind: ColumnKind) -> Intervention:
    if kind != "numeric":
        raise invalid_params(
            f"{field}.type", f"soft interventions need a numeric node; {node!r} is {kind}"
        )
    transform = spec.get("transform")
    if transform not in TRANSFORMS:
        raise invalid_params(
            f"{field}.transform", f"must be one of {list(TRANSFORMS)}, got {transform!r}"
        )
    param = finite_number(spec.get("param"), f"{field}.param")
    return Intervention(node, "soft", transform=transform, param=param)
