"""Caller data → wire shapes: graphs, trace columns, values. Duck-typed, stdlib only.

A graph may be ``{"nodes", "edges"}``, a list of ``(parent, child)`` edges, or anything
shaped like a networkx DiGraph. Traces may be a dict of columns or anything shaped like
a pandas DataFrame; numpy arrays and scalars are converted. NaN means missing (as in
pandas) and is sent as null; an infinite value cannot be sent and is refused here.

When the worker reads binary columns (its handshake says so), a numeric column goes as
``{"dtype", "data"}``: little-endian bytes in base64, NaN for missing. A numpy array
or pandas column is sent from its own buffer, a list through ``array``; anything
else (strings, booleans with gaps, object columns) stays a JSON list. Binary result
columns come back as ``array('d')``.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ._jsonline import AsciiText
from .errors import ProtocolError, invalid_argument
from .results import as_list

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


def traces_to_wire(traces: Any, field: str = "traces", binary: bool = False) -> dict[str, Any]:
    """Columns by name; numeric ones binary when ``binary`` (the worker reads them)."""
    is_frame = hasattr(traces, "columns") and hasattr(traces, "__getitem__")
    if is_frame and not isinstance(traces, Mapping):
        columns = {str(c): traces[c] for c in traces.columns}  # pandas DataFrame
    elif isinstance(traces, Mapping):
        columns = dict(traces)
    else:
        raise TypeError(
            f"{field} must be a dict of columns or a DataFrame, got {type(traces).__name__}"
        )
    return {
        str(name): _column(values, f"{field}.{name}", binary) for name, values in columns.items()
    }


def _column(values: Any, field: str, binary: bool) -> Any:
    if values is None or isinstance(values, (str, int, float, Mapping)):
        return to_jsonable(values)  # a block as it is, or no column: the worker names it
    encoded = binary_column(values) if binary else None
    return encoded if encoded is not None else column_to_wire(values, field)


#: numpy's dtype strings for what goes on the wire as it is
_AS_IS: Final = {"<f8": "float64", "<i8": "int64", "|b1": "bool"}
_NONE = type(None)


def binary_column(values: Any) -> dict[str, Any] | None:
    """A numeric column as a binary block, or None when it must go as a JSON list."""
    to_numpy = getattr(values, "to_numpy", None)  # a pandas Series
    data = to_numpy() if callable(to_numpy) else values
    dtype = getattr(data, "dtype", None)
    if dtype is not None:
        return _from_buffer(data, dtype)
    if isinstance(values, (list, tuple)):
        return _from_list(values)
    return None


def _from_buffer(data: Any, dtype: Any) -> dict[str, Any] | None:
    """A numpy array, sent from its own memory when it is already little-endian and contiguous."""
    if getattr(dtype, "kind", None) not in ("f", "i", "u", "b"):
        return None
    name = _AS_IS.get(str(getattr(dtype, "str", "")))
    if name is None:  # float32, int16, big-endian, …: the worker reads float64
        data, name = data.astype("<f8"), "float64"
    try:
        raw = memoryview(data).cast("B")
    except (TypeError, ValueError):  # not contiguous
        raw = memoryview(data.tobytes())
    return {"dtype": name, "data": AsciiText(base64.b64encode(raw))}


def _from_list(values: list[Any] | tuple[Any, ...]) -> dict[str, Any] | None:
    types = set(map(type, values))
    if types == {bool}:
        return {"dtype": "bool", "data": AsciiText(base64.b64encode(bytes(values)))}
    numbers = types - {_NONE}
    if not numbers or not numbers <= {int, float}:
        return None
    try:
        gaps_as_nan = [math.nan if v is None else v for v in values] if _NONE in types else values
        floats = array("d", gaps_as_nan)
    except OverflowError:  # an int too large for a float: the JSON path names it
        return None
    if sys.byteorder == "big":
        floats.byteswap()
    return {"dtype": "float64", "data": AsciiText(base64.b64encode(floats))}


def columns_from_wire(
    columns: Mapping[str, Any], attached: Sequence[array[float]] | None = None
) -> dict[str, Any]:
    """Result columns (samples): a binary block as an ``array('d')``, NaN where a value is
    missing; a JSON list as it came. No per-value work: results.py makes lists on demand.
    ``attached``: the reply's attached parts, which ``"attached"`` blocks name by index."""
    return {
        name: _decode_column(value, attached) if isinstance(value, Mapping) else value
        for name, value in columns.items()
    }


def plain_result(result: Any) -> Any:
    """A reply as plain JSON: a ``sample`` result's binary and attached columns as lists
    (None where a value is missing), as a JSON list brings them; anything else as it is."""
    samples = result.get("samples") if isinstance(result, Mapping) else None
    if not isinstance(samples, Mapping):
        return result
    attached = getattr(result, "attached", None)  # AttachedResult: the parts the reply brought
    plain = {name: as_list(_decode_column(value, attached)) if _is_block(value) else value
             for name, value in samples.items()}
    return {**result, "samples": plain}


def _is_block(value: Any) -> bool:
    """A binary or attached column: ``{"dtype", "data"}`` or ``{"dtype", "attached"}``."""
    return isinstance(value, Mapping) and "dtype" in value and (
        "data" in value or "attached" in value)


def _decode_column(
    block: Mapping[str, Any], attached: Sequence[array[float]] | None
) -> array[float]:
    if "attached" in block:
        return _attached_part(block["attached"], attached)
    # a2b_base64 reads the ASCII str in place; b64decode would copy it to bytes first
    floats = array("d", binascii.a2b_base64(block["data"]))
    if sys.byteorder == "big":
        floats.byteswap()
    return floats


def _attached_part(index: Any, attached: Sequence[array[float]] | None) -> array[float]:
    """The reply's attached part a block names (the channel read it in wire order)."""
    count = 0 if attached is None else len(attached)
    if type(index) is not int or not 0 <= index < count:
        raise ProtocolError(f"a result column names attached part {index!r:.50}, "
                            f"and the reply brought {count}")
    assert attached is not None
    return attached[index]


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


def fit_params(
    graph: Any, traces: Any, config: Mapping[str, Any], binary: bool = False
) -> dict[str, Any]:
    """``fit``'s params on the wire, from what ``Worker.fit`` and a batch request accept."""
    return {"graph": graph_to_wire(graph), "traces": traces_to_wire(traces, binary=binary),
            "config": to_jsonable(dict(config))}
