"""In-process fuzz of the worker's pure functions: the line reader, the line handler, the
reply encoder and the param checks, thousands of cases each (no DoWhy involved).

The same functions are fuzzed through a real worker process by tests/reliability/
(test_malformed_input.py, test_param_fuzz.py); here Hypothesis can afford far more
cases and shrink a failure to its smallest input. Each property is the specification's:
the reader splits any byte stream into exactly its lines, refusing over-long ones but
resynchronising at the next newline; the handler answers anything without raising, with
a reply the encoder always turns into one strict-JSON ASCII line; each param check
either returns a value that satisfies its invariants or raises -32602/-32004 naming a
field under its own parameter.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scm_worker.api import methods
from scm_worker.api.binding import rpc_method
from scm_worker.checks import (
    MAX_SEED,
    QUALITIES,
    count_param,
    optional_node_list,
    optional_seed,
    parse_fit_config,
    parse_graph,
    parse_traces,
)
from scm_worker.context import WorkerContext
from scm_worker.engine.interventions import parse_interventions
from scm_worker.engine.store import ModelStore
from scm_worker.errors import INVALID_PARAMS, LIMIT_EXCEEDED, WorkerError, invalid_params
from scm_worker.limits import Limits
from scm_worker.server.protocol import (
    Dispatcher,
    LineTooLong,
    encode_reply,
    handle_line,
    read_line,
)

SCALE = float(os.environ.get("SCM_FUZZ_SCALE", "1"))


def many(n: int) -> settings:
    return settings(max_examples=max(20, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DOCUMENTED_CODES = {-32700, -32600, -32601, -32602, -32603, *range(-32099, -32000)}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=16,
)


def refusal(exc: WorkerError, root: str) -> None:
    """A param check's error: -32602 or -32004, naming a field under ``root``."""
    event(f"refused {exc.code}")
    assert exc.code in (INVALID_PARAMS, LIMIT_EXCEEDED), exc.message
    assert isinstance(exc.data, dict)
    field = exc.data.get("field")
    assert isinstance(field, str) and (field == root or field.startswith((root + ".", root + "["))), exc.data
    if exc.code == INVALID_PARAMS:
        assert isinstance(exc.data.get("reason"), str) and exc.data["reason"]
    else:
        assert exc.data["value"] > exc.data["max"]


# -- read_line ------------------------------------------------------------------------------


@many(3000)
@given(
    lines=st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    final_newline=st.booleans(),
    max_bytes=st.integers(1, 100),
    buffer_size=st.integers(1, 64),
)
def test_read_line_splits_any_stream_into_exactly_its_lines(
    lines: list[bytes], final_newline: bool, max_bytes: int, buffer_size: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    # a small buffer makes lines straddle reads, as a pipe delivers them
    stream = io.BufferedReader(io.BytesIO(data), buffer_size=buffer_size)  # type: ignore[arg-type]
    parts = data.split(b"\n")
    expected = [(p, True) for p in parts[:-1]] + ([(parts[-1], False)] if parts[-1] else [])
    for content, newline in expected:
        if len(content) > max_bytes:
            with pytest.raises(LineTooLong) as caught:
                read_line(stream, max_bytes)
            assert caught.value.size == len(content) + newline
        else:
            assert read_line(stream, max_bytes) == content + (b"\n" if newline else b"")
    assert read_line(stream, max_bytes) is None
    assert read_line(stream, max_bytes) is None


# -- handle_line and encode_reply ------------------------------------------------------------


class StubFailure(Exception):
    """What the ``boom`` stand-in raises: the one -32603 a handler may cause here."""


def make_dispatcher() -> Dispatcher:
    """The real protocol layer and a few real handlers, plus stand-ins that echo or fail."""
    ctx = WorkerContext(Limits(), ModelStore(4))
    ctx.warmup.finish(time.monotonic())
    real = methods.rpc.table(ctx.test_methods)
    table = {name: real[name] for name in ("initialize", "ping", "warmup", "models.list", "models.drop",
                                           "models.load", "models.save", "models.prune")}

    def echo(ctx: Any, **params: Any) -> Any:
        return params

    def boom(ctx: Any, message: Any = "boom") -> None:
        raise StubFailure(message)

    def refuse(ctx: Any, field: Any = "x") -> None:
        raise invalid_params(str(field), "refused")

    def nan(ctx: Any) -> float:
        return math.nan  # a result that is not JSON: the encoder must cope

    for name, handler in (("echo", echo), ("boom", boom), ("refuse", refuse), ("nan", nan)):
        table[name] = rpc_method(handler)
    return Dispatcher(table, ctx)


DISPATCHER = make_dispatcher()
METHOD_NAMES = ["initialize", "ping", "warmup", "models.list", "models.drop", "models.load", "models.save",
                "models.prune", "echo", "boom", "refuse", "nan", "missing"]
legal_ids = st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.none())


@st.composite
def requests(draw: st.DrawFn) -> Any:
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        message["jsonrpc"] = "2.0" if draw(st.integers(0, 4)) else draw(json_scalars)
    if draw(st.integers(0, 9)):
        message["method"] = draw(st.sampled_from(METHOD_NAMES)) if draw(st.integers(0, 4)) else draw(json_values)
    if draw(st.booleans()):
        message["params"] = draw(st.one_of(
            st.dictionaries(st.sampled_from(["model_id", "timeout", "message", "field", "older_than_s", "x"]),
                            json_values, max_size=3),
            st.lists(json_values, max_size=3), json_scalars))
    if draw(st.integers(0, 4)):
        message["id"] = draw(legal_ids) if draw(st.integers(0, 4)) else draw(json_values)
    if not draw(st.integers(0, 15)):
        message[draw(st.text(max_size=4))] = draw(json_scalars)
    return message


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=80))
    if kind == 1:
        return json.dumps(draw(json_values)).encode()
    if kind == 2:
        data = json.dumps(draw(requests())).encode()
        return data[: draw(st.integers(0, len(data)))]
    if kind == 3:
        return json.dumps(draw(st.lists(st.one_of(requests(), json_values), max_size=5))).encode()
    if kind == 4:
        return draw(st.sampled_from([b"NaN", b"[Infinity]", b'{"id":-Infinity}', b"1e400", b"[" * 5000, b"9" * 5000]))
    return json.dumps(draw(requests())).encode()


def well_formed(reply: Any) -> None:
    """A JSON-RPC response; -32603 only from the stand-ins (no real handler fails on bad params)."""
    assert isinstance(reply, dict) and reply.get("jsonrpc") == "2.0" and "id" in reply, reply
    assert set(reply) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), reply
    if "error" in reply:
        error = reply["error"]
        assert error["code"] in DOCUMENTED_CODES and isinstance(error["message"], str), reply
        if error["code"] == -32603:
            stand_in = error.get("data", {}).get("type") == "StubFailure"
            assert stand_in or error["message"] == "Internal error: result is not valid JSON", reply


@many(3000)
@given(lines())
def test_handle_line_answers_anything_with_one_strict_json_ascii_line(raw: bytes) -> None:
    reply = handle_line(raw, DISPATCHER)
    if reply is None:  # only a notification (or a batch of nothing but notifications) goes unanswered
        assert only_notifications(raw), raw
        return
    line = encode_reply(reply)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = json.loads(line.decode("ascii"), parse_constant=lambda token: pytest.fail(f"{token} written"))
    if isinstance(reply, list):
        assert isinstance(decoded, list) and decoded
        for item in decoded:
            well_formed(item)
    else:
        well_formed(decoded)


def only_notifications(raw: bytes) -> bool:
    """The line is a valid request without an id, or a non-empty batch of nothing else."""
    try:
        message = json.loads(raw, parse_constant=not_json)
    except (ValueError, RecursionError):
        return False
    messages = message if isinstance(message, list) and message else [message]
    return all(isinstance(m, dict) and "id" not in m and m.get("jsonrpc") == "2.0" and isinstance(m.get("method"), str)
               for m in messages)


def not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(st.characters(codec=None), max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10,
)


@many(2000)
@given(result=anything, id_=legal_ids, batch=st.booleans())
def test_encode_reply_always_writes_one_strict_json_line(result: Any, id_: Any, batch: bool) -> None:
    """Results with NaN, infinities or lone surrogates: never an exception, never a bad line."""
    reply: Any = {"jsonrpc": "2.0", "result": result, "id": id_}
    line = encode_reply([reply, {"jsonrpc": "2.0", "result": 1, "id": "other"}] if batch else reply)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = json.loads(line.decode("ascii"), parse_constant=lambda token: pytest.fail(f"{token} written"))
    first = decoded[0] if batch else decoded
    assert first["id"] == id_ or (isinstance(id_, float) and first["id"] == id_)
    if "error" in first:
        assert first["error"]["code"] == -32603
    if batch:
        assert decoded[1] == {"jsonrpc": "2.0", "result": 1, "id": "other"}


def test_encode_reply_of_a_result_nested_too_deeply_is_an_internal_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    decoded = json.loads(encode_reply({"jsonrpc": "2.0", "result": deep, "id": 3}))
    assert decoded["error"]["code"] == -32603 and decoded["id"] == 3


# -- the param checks --------------------------------------------------------------------------

SMALL = Limits(max_rows=40, max_nodes=6, max_edges=8, max_cells=150)
names = st.one_of(st.sampled_from(["A", "B", "C", "D", "E", "F", "G", ""]), json_scalars)


@st.composite
def graph_values(draw: st.DrawFn) -> Any:
    """A DAG by construction (forward edges), then, half of the time, one or two things broken."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    nodes: list[Any] = draw(st.lists(st.sampled_from("ABCDEFGH"), min_size=1, max_size=7, unique=True))
    edges: list[Any] = [[nodes[i], nodes[j]] for i in range(len(nodes)) for j in range(i + 1, len(nodes))
                        if draw(st.integers(0, 3)) == 0]
    graph: dict[str, Any] = {"nodes": nodes, "edges": edges}
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        how = draw(st.sampled_from(["back-edge", "self-loop", "unknown", "duplicate", "bad-node", "bad-edge",
                                    "repeat-edge", "member", "drop", "empty"]))
        if how == "back-edge" and edges:
            parent, child = draw(st.sampled_from([e for e in edges if isinstance(e, list) and len(e) == 2] or [["A", "B"]]))
            edges.append([child, parent])
        elif how == "self-loop":
            node = draw(st.sampled_from(nodes or ["A"]))
            edges.append([node, node])
        elif how == "unknown":
            edges.append([draw(st.sampled_from(nodes or ["A"])), draw(st.sampled_from(["Z", "", 1]))])
        elif how == "duplicate" and nodes:
            nodes.append(draw(st.sampled_from(nodes)))
        elif how == "bad-node" and nodes:
            nodes[draw(st.integers(0, len(nodes) - 1))] = draw(st.one_of(st.just(""), json_scalars))
        elif how == "bad-edge":
            edges.append(draw(st.one_of(st.lists(names, max_size=3), json_scalars)))
        elif how == "repeat-edge" and (pairs := [e for e in edges if isinstance(e, list)]):
            edges.append(list(draw(st.sampled_from(pairs))))
        elif how == "member":
            graph[draw(st.text(max_size=3))] = draw(json_scalars)
        elif how == "drop":
            graph.pop(draw(st.sampled_from(["nodes", "edges"])), None)
        elif how == "empty":
            graph["nodes"] = nodes = []
    return graph


def is_acyclic(nodes: tuple[str, ...], edges: tuple[tuple[str, str], ...]) -> bool:
    remaining, left = set(nodes), set(edges)
    while remaining:
        roots = {n for n in remaining if not any(child == n for _, child in left)}
        if not roots:
            return False
        remaining -= roots
        left = {(a, b) for a, b in left if a not in roots}
    return True


@many(3000)
@given(graph_values())
def test_parse_graph_returns_a_dag_or_names_the_field(value: Any) -> None:
    try:
        graph = parse_graph(value, SMALL)
    except WorkerError as exc:
        refusal(exc, "graph")
        return
    event("accepted")
    assert graph.nodes and len(set(graph.nodes)) == len(graph.nodes) <= SMALL.max_nodes
    assert all(isinstance(n, str) and n for n in graph.nodes)
    assert len(set(graph.edges)) == len(graph.edges) <= SMALL.max_edges
    assert all(a in graph.nodes and b in graph.nodes and a != b for a, b in graph.edges)
    assert is_acyclic(graph.nodes, graph.edges)
    assert list(graph.nodes) == value["nodes"]
    assert set(graph.edges) == {tuple(e) for e in value.get("edges", [])}


cells = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.sampled_from(["a", "b"]),
                  st.lists(st.integers(), max_size=1))


@st.composite
def trace_values(draw: st.DrawFn) -> tuple[Any, tuple[str, ...]]:
    nodes = tuple(draw(st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=5, unique=True)))
    if draw(st.integers(0, 6)) == 0:
        return draw(json_values), nodes
    rows = draw(st.integers(0, 45))
    traces: dict[str, Any] = {}  # every column valid about half of the time
    for node in nodes:
        kind = draw(st.sampled_from(["num"] * 6 + ["str"] * 3 + ["bool"] * 3 + ["mixed", "junk"]))
        length = rows if draw(st.integers(0, 20)) else draw(st.integers(0, 45))
        if kind == "num":
            traces[node] = draw(st.lists(st.one_of(st.floats(allow_nan=False), st.integers(), st.none()), min_size=length, max_size=length))
        elif kind == "str":
            traces[node] = draw(st.lists(st.one_of(st.sampled_from(["x", "y"]), st.none()), min_size=length, max_size=length))
        elif kind == "bool":
            traces[node] = draw(st.lists(st.one_of(st.booleans(), st.none()), min_size=length, max_size=length))
        elif kind == "mixed":
            traces[node] = draw(st.lists(cells, min_size=length, max_size=length))
        else:
            traces[node] = draw(json_values)
    if draw(st.integers(0, 12)) == 0:
        traces.pop(draw(st.sampled_from(nodes)))
    if draw(st.integers(0, 12)) == 0:
        traces[draw(st.sampled_from(["Z", "a", ""]))] = []
    return traces, nodes


@many(3000)
@given(trace_values())
def test_parse_traces_returns_typed_columns_or_names_the_field(case: tuple[Any, tuple[str, ...]]) -> None:
    value, nodes = case
    try:
        columns = parse_traces(value, nodes, SMALL)
    except WorkerError as exc:
        refusal(exc, "traces")
        return
    event("accepted")
    assert tuple(columns) == nodes
    rows = {len(c.values) for c in columns.values()}
    assert len(rows) == 1 and rows.pop() * len(nodes) <= SMALL.max_cells
    for node, column in columns.items():
        # numbers arrive as float64, as DoWhy sees them (an int past 2**53 rounds)
        assert column.values == [v if v is None or column.kind != "numeric" else float(v) for v in value[node]]
        present = [v for v in column.values if v is not None]
        if column.kind == "numeric":
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in present)
        elif column.kind == "boolean":
            assert all(isinstance(v, bool) for v in present)
        else:
            assert all(isinstance(v, str) for v in present)


GOOD_CONFIG = {
    "quality": st.sampled_from(["GOOD", "good", "Better", "BEST"]), "validate_r2": st.booleans(),
    "r2_threshold": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5)),
    "r2_rule": st.sampled_from(["mean", "each"]), "test_size": st.floats(0.01, 0.99), "seed": st.one_of(st.none(), st.integers(0, MAX_SEED)),
    "min_samples": st.integers(2, 10**6), "missing": st.sampled_from(["drop", "error"]), "linear_tolerance": st.floats(0, 10),
    "persist": st.booleans(), "cache": st.booleans(),
}
BAD_CONFIG = st.one_of(json_scalars, st.sampled_from([0, 1, 1.0, -1, 2**32, "FAST", "all", "impute", 1e308, -0.0]))


@st.composite
def config_values(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    config = {key: draw(GOOD_CONFIG[key]) for key in draw(st.lists(st.sampled_from(sorted(GOOD_CONFIG)), max_size=6, unique=True))}
    if draw(st.booleans()):
        config[draw(st.sampled_from([*sorted(GOOD_CONFIG), "Quality", "n_jobs", ""]))] = draw(BAD_CONFIG)
    return config


@many(3000)
@given(config_values())
def test_parse_fit_config_returns_a_valid_config_or_names_the_key(value: Any) -> None:
    try:
        config = parse_fit_config(value)
    except WorkerError as exc:
        refusal(exc, "config")
        return
    event("accepted")
    assert config.quality in QUALITIES and config.r2_rule in ("mean", "each") and config.missing in ("drop", "error")
    assert 0 < config.test_size < 1 and math.isfinite(config.r2_threshold) and config.linear_tolerance >= 0
    assert config.seed is None or 0 <= config.seed <= MAX_SEED
    assert isinstance(config.min_samples, int) and config.min_samples >= 2
    assert all(isinstance(getattr(config, k), bool) for k in ("validate_r2", "persist", "cache"))


KINDS = {"X": "numeric", "C": "categorical", "B": "boolean"}
CATEGORIES = {"C": ["hi", "lo"], "B": ["False", "True"]}


GOOD_VALUES = {"X": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()),
               "C": st.sampled_from(["hi", "lo"]), "B": st.booleans()}


@st.composite
def intervention_values(draw: st.DrawFn) -> Any:
    """Valid specs by construction, then, half of the time, one member broken."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    items: list[Any] = []
    for node in draw(st.lists(st.sampled_from(sorted(KINDS)), max_size=3, unique=True)):
        if node == "X" and draw(st.booleans()):
            items.append({"type": "soft", "node": node, "transform": draw(st.sampled_from(["shift", "scale"])),
                          "param": draw(st.floats(allow_nan=False, allow_infinity=False))})
        else:
            items.append({"type": "hard", "node": node, "value": draw(GOOD_VALUES[node])})
            if draw(st.integers(0, 3)) == 0:
                del items[-1]["type"]
    if items and draw(st.booleans()):
        spec = items[draw(st.integers(0, len(items) - 1))]
        how = draw(st.sampled_from(["type", "node", "value", "transform", "param", "member", "drop", "junk", "twice"]))
        if how == "junk":
            items.append(draw(json_values))
        elif how == "twice":
            items.append(dict(spec))
        elif how == "member":
            spec[draw(st.sampled_from(["code", "Value", ""]))] = draw(json_scalars)
        elif how == "drop":
            spec.pop(draw(st.sampled_from(sorted(spec))))
        else:
            spec[how] = draw(st.one_of(json_scalars, st.sampled_from(["Hard", "Q", "zz", "log", "True", 1e308])))
    return items


@many(3000)
@given(intervention_values())
def test_parse_interventions_returns_declarative_specs_or_names_the_field(value: Any) -> None:
    try:
        parsed = parse_interventions(value, KINDS, CATEGORIES)  # type: ignore[arg-type]
    except WorkerError as exc:
        refusal(exc, "interventions")
        return
    event(f"accepted {len(parsed)}")
    assert len({i.node for i in parsed}) == len(parsed)
    for intervention in parsed:
        kind = KINDS[intervention.node]
        if intervention.type == "hard":
            if kind == "numeric":
                assert isinstance(intervention.value, (int, float)) and math.isfinite(intervention.value)
            elif kind == "boolean":
                assert isinstance(intervention.value, bool)
            else:
                assert intervention.value in CATEGORIES["C"]
        else:
            assert kind == "numeric" and intervention.transform in ("shift", "scale")
            assert isinstance(intervention.param, float) and math.isfinite(intervention.param)
        intervention.to_callable(kind)(1.0 if kind == "numeric" else "x")  # builds and runs, nothing else


@many(2000)
@given(value=json_values, minimum=st.integers(0, 3), maximum=st.integers(3, 1000))
def test_count_and_seed_and_node_list_checks_never_raise_anything_else(value: Any, minimum: int, maximum: int) -> None:
    """Each returns the value it was given, within its range, or refuses naming its own field."""
    try:
        count = count_param(value, "n", minimum, maximum)
    except WorkerError as exc:
        refusal(exc, "n")
        assert (exc.code == LIMIT_EXCEEDED) == (is_int(value) and value > maximum), exc.message
    else:
        assert is_int(count) and minimum <= count <= maximum and count == value
    try:
        seed = optional_seed(value, "seed")
    except WorkerError as exc:
        refusal(exc, "seed")
        assert exc.code == INVALID_PARAMS and not (is_int(value) and 0 <= value <= MAX_SEED), exc.message
    else:
        assert seed is None if value is None else (is_int(seed) and 0 <= seed <= MAX_SEED and seed == value)
    try:
        names = optional_node_list(value, ("A", "B"), "query_nodes")
    except WorkerError as exc:
        refusal(exc, "query_nodes")
        assert exc.code == INVALID_PARAMS
    else:
        # every listed name is a node, each once, in the order of first mention
        assert names is None if value is None else names == list(dict.fromkeys(value)) and set(names) <= {"A", "B"}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
