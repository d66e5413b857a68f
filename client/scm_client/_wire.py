"""Caller data → wire shapes: graphs, trace columns, values. Duck-typed, stdlib only.

A graph may be ``{"nodes", "edges"}``, a list of ``(parent, child)`` edges, or anything
shaped like a networkx DiGraph. Traces may be a dict of columns or anything shaped like
a pandas DataFrame; numpy arrays and scalars are converted. NaN means missing (as in
pandas) and is sent as null; an infinite value cannot be sent and is refused here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import invalid_argument

Graph = dict[str, list[Any]]


def graph_to_wire(graph: Any) -> Graph:
    """Shape only; the worker checks the graph and names the field that is wrong."""
    if isinstance(graph, Mapping):
        wire: Graph = to_jsonable(dict(graph))
        if "nodes" not in wire and isinstance(wire.get("edges"), list):
            wire["nodes"] = _nodes_of(_edge_pairs(wire["edges"]))
        return wire
    if hasattr(graph, "nodes") and hasattr(graph, "edges"):  # networkx DiGraph
        return {"nodes": [plain(n) for n in graph.nodes],
                "edges": [[plain(a), plain(b)] for a, b in graph.edges]}
    if isinstance(graph, Iterable) and not isinstance(graph, (str, bytes)):
        edges = _edge_pairs(to_jsonable(list(graph)))
        return {"nodes": _nodes_of(edges), "edges": edges}
    raise TypeError(f"graph must be a {{'nodes','edges'}} dict, an edge list or a DiGraph, "
                    f"got {type(graph).__name__}")


def _edge_pairs(edges: list[Any]) -> list[list[Any]]:
    for i, edge in enumerate(edges):
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            raise invalid_argument(f"graph.edges[{i}]", "an edge must be a [parent, child] pair")
    return [list(edge) for edge in edges]


def _nodes_of(edges: list[list[Any]]) -> list[Any]:
    return list(dict.fromkeys(node for edge in edges for node in edge))


def traces_to_wire(traces: Any, field: str = "traces") -> dict[str, list[Any]]:
    is_frame = hasattr(traces, "columns") and hasattr(traces, "__getitem__")
    if is_frame and not isinstance(traces, Mapping):
        columns = {str(c): traces[c] for c in traces.columns}  # pandas DataFrame
    elif isinstance(traces, Mapping):
        columns = dict(traces)
    else:
        raise TypeError(f"{field} must be a dict of columns or a DataFrame, "
                        f"got {type(traces).__name__}")
    return {str(name): column_to_wire(values, f"{field}.{name}")
            for name, values in columns.items()}


def column_to_wire(values: Any, field: str) -> list[Any]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    out = []
    for i, value in enumerate(values):
        value = plain(value)
        if isinstance(value, float) and not math.isfinite(value):
            if math.isnan(value):
                value = None
            else:
                raise invalid_argument(f"{field}[{i}]", "infinite values cannot be sent as JSON")
        out.append(value)
    return out


def plain(value: Any) -> Any:
    """numpy scalars → Python scalars (duck-typed through ``.item()``)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return value


def to_jsonable(value: Any) -> Any:
    """Nested params (interventions, configs) with numpy values made plain."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    return plain(value)


def fit_params(graph: Any, traces: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """``fit``'s params on the wire, from what ``Worker.fit`` and a batch request accept."""
    return {"graph": graph_to_wire(graph), "traces": traces_to_wire(traces),
            "config": to_jsonable(dict(config))}
