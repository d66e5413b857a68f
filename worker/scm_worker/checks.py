"""Checking request params before any work: graphs, trace columns, configs.

Pure Python (no pandas, no DoWhy) so every rule is cheap and unit-testable. Each
problem is a -32602 that names the field (``graph.edges[3]``, ``traces.X[17]``,
``config.quality``); each size breach is a -32004.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from .columns import Column, decode_column, json_type
from .errors import invalid_params, limit_exceeded
from .limits import Limits
from .mechanism_specs import MechanismSpec, parse_mechanisms

QUALITIES: Final = ("GOOD", "BETTER", "BEST", "FAST")
MAX_SEED: Final = 2**32 - 1
#: model ids are made by the store (``m-`` + 16 hex digits) and checked against this
MODEL_ID: Final = re.compile(r"^m-[0-9a-f]{16}$")


@dataclass(frozen=True)
class Graph:
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]

    def parents(self, node: str) -> list[str]:
        return [a for a, b in self.edges if b == node]

    def as_json(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges]}


@dataclass(frozen=True)
class FitConfig:
    quality: str = "GOOD"
    validate_r2: bool = True
    r2_threshold: float = 0.7
    r2_rule: Literal["mean", "each"] = "mean"
    test_size: float = 0.2
    seed: int | None = None
    min_samples: int = 100
    missing: Literal["drop", "error"] = "drop"
    linear_tolerance: float = 0.0
    mechanisms: tuple[MechanismSpec, ...] = ()  # hand-set nodes, in graph order
    persist: bool = False
    cache: bool = True
    extra_columns: Literal["ignore", "error"] = "ignore"

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "mechanisms": self.mechanisms_json()}

    def mechanisms_json(self) -> dict[str, Any]:
        return {spec.node: spec.as_json() for spec in self.mechanisms}

    def mechanism(self, node: str) -> MechanismSpec | None:
        """The node's hand-set mechanism; None where DoWhy's assignment chooses."""
        return next((spec for spec in self.mechanisms if spec.node == node), None)

    def fit_relevant(self) -> dict[str, Any]:
        """The keys that change what a fit produces (the cache key's part of the config);
        no hand-set mechanisms keep the key of a config without the key."""
        relevant = {k: v for k, v in self.as_json().items() if k not in NOT_FIT_RELEVANT}
        if not self.mechanisms:
            del relevant["mechanisms"]
        return relevant


#: config keys that change how a fit request is handled, not the model it produces
NOT_FIT_RELEVANT: Final = ("persist", "cache", "extra_columns")


class Traces(dict[str, Column]):
    """Checked trace columns keyed by node, in the order asked for, and ``ignored``: the
    given columns that were not asked for (a row id, a date), in the order given.

    Those are neither decoded nor copied (DoWhy, given a wider DataFrame, reads only the
    columns it needs); the answer names them.
    """

    def __init__(self, columns: dict[str, Column], ignored: list[str]) -> None:
        super().__init__(columns)
        self.ignored = ignored


def require_dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_params(field, f"must be an object, got {json_type(value)}")
    return value


def require_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_params(field, f"must be an array, got {json_type(value)}")
    return value


def parse_graph(value: Any, limits: Limits) -> Graph:
    graph = require_dict(value, "graph")
    nodes = _parse_nodes(graph.get("nodes"), limits)
    edges = _parse_edges(graph.get("edges", []), set(nodes), limits)
    unknown = set(graph) - {"nodes", "edges"}
    if unknown:
        raise invalid_params(f"graph.{min(unknown)}", "unknown member")
    _require_acyclic(nodes, edges)
    return Graph(tuple(nodes), tuple(edges))


def _parse_nodes(value: Any, limits: Limits) -> list[str]:
    nodes = require_list(value, "graph.nodes")
    if not nodes:
        raise invalid_params("graph.nodes", "must name at least one node")
    if len(nodes) > limits.max_nodes:
        raise limit_exceeded("max_nodes", len(nodes), limits.max_nodes, "graph.nodes")
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if not isinstance(node, str) or not node:
            raise invalid_params(f"graph.nodes[{i}]", "a node name must be a non-empty string")
        if node in seen:
            raise invalid_params(f"graph.nodes[{i}]", f"duplicate node {node!r}")
        seen.add(node)
    return nodes


def _parse_edges(value: Any, nodes: set[str], limits: Limits) -> list[tuple[str, str]]:
    raw = require_list(value, "graph.edges")
    if len(raw) > limits.max_edges:
        raise limit_exceeded("max_edges", len(raw), limits.max_edges, "graph.edges")
    edges: list[tuple[str, str]] = []
    for i, edge in enumerate(raw):
        field = f"graph.edges[{i}]"
        if not (isinstance(edge, list) and len(edge) == 2):
            raise invalid_params(field, "an edge must be a [parent, child] pair")
        for end in edge:
            if end not in nodes:
                raise invalid_params(field, f"{end!r} is not in graph.nodes")
        if edge[0] == edge[1]:
            raise invalid_params(field, f"self-loop on {edge[0]!r}")
        if (edge[0], edge[1]) not in edges:
            edges.append((edge[0], edge[1]))
    return edges


def _require_acyclic(nodes: list[str], edges: list[tuple[str, str]]) -> None:
    """Kahn's algorithm; on a cycle, name the nodes that could not be ordered."""
    indegree = {n: 0 for n in nodes}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for parent, child in edges:
        indegree[child] += 1
        children[parent].append(child)
    ready = [n for n, d in indegree.items() if d == 0]
    ordered = 0
    while ready:
        node = ready.pop()
        ordered += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if ordered < len(nodes):
        stuck = sorted(n for n, d in indegree.items() if d > 0)
        raise invalid_params("graph.edges", f"graph is not a DAG: cycle through {stuck}")


def parse_traces(
    value: Any, nodes: tuple[str, ...] | list[str], limits: Limits, field: str = "traces"
) -> Traces:
    """The columns of ``nodes``, in that order, with their kinds; the other columns given
    are only named (``Traces.ignored``): a missing node column is the error.

    Shape and size first (binary columns are decoded here: their length is their size),
    then the values of JSON arrays, so a request with several faults always gets the
    same first one.
    """
    traces = require_dict(value, field)
    _require_node_columns(traces, nodes, field)
    binary = {name: decode_column(traces[name], f"{field}.{name}")
              for name in nodes if not isinstance(traces[name], list)}
    lengths = {name: len(binary[name]) if name in binary else len(traces[name]) for name in nodes}
    if len(set(lengths.values())) > 1:
        raise invalid_params(field, f"columns have different lengths: {lengths}", lengths=lengths)
    rows = next(iter(lengths.values()), 0)
    if rows > limits.max_rows:
        raise limit_exceeded("max_rows", rows, limits.max_rows, field)
    require_cells(rows, len(nodes), limits, field)
    columns = {
        name: binary.get(name) or decode_column(traces[name], f"{field}.{name}") for name in nodes
    }
    return Traces(columns, not_in(traces, nodes))


def parse_fit_request(
    graph: Any, traces: Any, config: Any, limits: Limits
) -> tuple[Graph, dict[str, Column], FitConfig]:
    """``fit``'s params, checked: the graph, then its trace columns, then the config."""
    parsed_graph = parse_graph(graph, limits)
    columns = parse_traces(traces, parsed_graph.nodes, limits)
    fit_config = parse_fit_config(config, parsed_graph, columns)
    if columns.ignored and fit_config.extra_columns == "error":
        raise invalid_params(
            "traces",
            "trace columns must match graph nodes exactly (config.extra_columns is 'error'): "
            f"missing in traces: []; missing in graph: {columns.ignored}",
            missing_in_traces=[],
            missing_in_graph=columns.ignored,
        )
    return parsed_graph, columns, fit_config


def require_cells(rows: int, nodes: int, limits: Limits, field: str) -> None:
    """Rows × nodes within ``max_cells``: for traces sent, and for samples a request asks
    the worker to draw (DoWhy draws every node of the model, however few are queried)."""
    if rows * nodes > limits.max_cells:
        raise limit_exceeded("max_cells", rows * nodes, limits.max_cells, field)


def _require_node_columns(
    traces: dict[str, Any], nodes: tuple[str, ...] | list[str], field: str
) -> None:
    """Every node asked for has its column; the others given are named beside them."""
    missing = [n for n in nodes if n not in traces]
    if missing:
        ignored = not_in(traces, nodes)
        raise invalid_params(
            field,
            f"no column for {missing} (needed: {list(nodes)}; columns given but not "
            f"needed are ignored: {ignored})",
            missing_in_traces=missing,
            missing_in_graph=ignored,
        )


def not_in(traces: dict[str, Any], nodes: tuple[str, ...] | list[str]) -> list[str]:
    """The names of ``traces`` that are not among ``nodes``, in the order given."""
    wanted = set(nodes)
    return [name for name in traces if name not in wanted]


def parse_fit_config(
    value: Any, graph: Graph | None = None, columns: dict[str, Column] | None = None
) -> FitConfig:
    """The config; ``mechanisms`` is checked against the graph and its columns' kinds
    (without them, every node it names is unknown)."""
    config = {} if value is None else dict(require_dict(value, "config"))
    unknown = set(config) - set(FitConfig.__dataclass_fields__)
    if unknown:
        raise invalid_params(f"config.{min(unknown)}", "unknown config key")
    defaults = FitConfig()
    return FitConfig(
        quality=_quality(config.get("quality", defaults.quality)),
        validate_r2=require_bool(
            config.get("validate_r2", defaults.validate_r2), "config.validate_r2"
        ),
        r2_threshold=finite_number(
            config.get("r2_threshold", defaults.r2_threshold), "config.r2_threshold"
        ),
        r2_rule=choice(config.get("r2_rule", defaults.r2_rule), "config.r2_rule", ("mean", "each")),
        test_size=_fraction(config.get("test_size", defaults.test_size), "config.test_size"),
        seed=optional_seed(config.get("seed"), "config.seed"),
        min_samples=count_param(
            config.get("min_samples", defaults.min_samples), "config.min_samples", 2
        ),
        missing=choice(
            config.get("missing", defaults.missing), "config.missing", ("drop", "error")
        ),
        linear_tolerance=_non_negative(
            config.get("linear_tolerance", defaults.linear_tolerance), "config.linear_tolerance"
        ),
        mechanisms=parse_mechanisms(
            config.get("mechanisms"),
            set(graph.nodes) - {child for _, child in graph.edges} if graph else set(),
            {name: column.kind for name, column in (columns or {}).items()},
        ),
        persist=require_bool(config.get("persist", defaults.persist), "config.persist"),
        cache=require_bool(config.get("cache", defaults.cache), "config.cache"),
        extra_columns=choice(
            config.get("extra_columns", defaults.extra_columns), "config.extra_columns",
            ("ignore", "error"),
        ),
    )


def _quality(value: Any) -> str:
    if isinstance(value, str) and value.upper() in QUALITIES:
        return value.upper()
    raise invalid_params("config.quality", f"must be one of {list(QUALITIES)}, got {value!r}")


def require_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_params(field, f"must be true or false, got {json_type(value)}")
    return value


def finite_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid_params(field, f"must be a finite number, got {value!r}")
    return float(value)


def _non_negative(value: Any, field: str) -> float:
    number = finite_number(value, field)
    if number < 0:
        raise invalid_params(field, f"must be >= 0, got {number}")
    return number


def _fraction(value: Any, field: str) -> float:
    number = finite_number(value, field)
    if not 0.0 < number < 1.0:
        raise invalid_params(field, f"must be strictly between 0 and 1, got {number}")
    return number


def optional_fraction(value: Any, field: str) -> float | None:
    return None if value is None else _fraction(value, field)


def bounded_number(value: Any, field: str, low: float, high: float) -> float:
    """A finite number in [low, high]: past the bounds, floats overflow or waits never end."""
    number = finite_number(value, field)
    if not low <= number <= high:
        raise invalid_params(field, f"must be a number in [{low:g}, {high:g}], got {value!r}")
    return number


def choice(value: Any, field: str, options: tuple[str, ...]) -> Any:
    if value not in options:
        raise invalid_params(field, f"must be one of {list(options)}, got {value!r}")
    return value


def count_param(value: Any, field: str, minimum: int, maximum: int | None = None) -> int:
    """An integer knob of at least ``minimum``; past ``maximum`` (when given) a -32004."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid_params(field, f"must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise limit_exceeded(field.rsplit(".", 1)[-1], value, maximum, field)
    return value


def optional_seed(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise invalid_params(field, f"must be null or an integer in [0, {MAX_SEED}], got {value!r}")
    return value


def optional_node_list(value: Any, nodes: tuple[str, ...], field: str) -> list[str] | None:
    if value is None:
        return None
    names = require_list(value, field)
    for i, name in enumerate(names):
        if name not in nodes:
            raise invalid_params(f"{field}[{i}]", f"unknown node {name!r}")
    return list(dict.fromkeys(names))


def check_model_id(model_id: Any) -> str:
    """A model id as the store makes them: a request can never name a path."""
    if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
        raise invalid_params("model_id", "not a model id (expected 'm-' and 16 hex digits)")
    return model_id
