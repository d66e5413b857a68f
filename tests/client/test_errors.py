"""The client's error classes against the worker's code table, and the pure helpers:
RestartPolicy and the caller-data → wire conversions in _wire.

The client env has no jsonrpcserver, so the worker's errors.py is read with ``ast``.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest
import scm_client
from hypothesis import given, settings
from hypothesis import strategies as st
from scm_client import errors
from scm_client._restart import RestartPolicy
from scm_client._wire import column_to_wire, graph_to_wire, plain, to_jsonable, traces_to_wire
from scm_client.errors import (
    InsufficientData,
    InvalidParams,
    ModelNotFound,
    RemoteError,
    UnsupportedQuery,
    ValidationFailed,
    WorkerCrashed,
    WorkerError,
    WorkerStartError,
    WorkerTimeout,
)

WORKER_ERRORS = Path(__file__).resolve().parents[2] / "worker" / "scm_worker" / "errors.py"


def worker_error_names() -> dict[int, str]:
    """``ERROR_NAMES`` of worker/scm_worker/errors.py, resolved without importing it."""
    tree = ast.parse(WORKER_ERRORS.read_text())
    constants: dict[str, int] = {}
    table: ast.Dict | None = None
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        ):
            name, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name == "ERROR_NAMES":
            assert isinstance(value, ast.Dict)
            table = value
        else:
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            if isinstance(literal, int):
                constants[name] = literal
    assert table is not None, "ERROR_NAMES not found in worker/scm_worker/errors.py"
    names: dict[int, str] = {}
    for key, value in zip(table.keys, table.values, strict=True):
        assert isinstance(key, ast.Name) and isinstance(value, ast.Constant)
        names[constants[key.id]] = value.value
    return names


ERROR_NAMES = worker_error_names()


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def remote_classes() -> dict[int, type[RemoteError]]:
    found: dict[int, type[RemoteError]] = {}
    todo = list(RemoteError.__subclasses__())
    while todo:
        cls = todo.pop()
        found[cls.code] = cls
        todo.extend(cls.__subclasses__())
    return found


# -- the code table ------------------------------------------------------------------------


def test_worker_table_is_read() -> None:
    assert ERROR_NAMES[-32700] == "parse_error"
    assert ERROR_NAMES[-32602] == "invalid_params"
    assert len(ERROR_NAMES) >= 12
    # JSON-RPC's reserved range, and LSP's RequestCancelled (-32800), which $/cancelRequest uses
    assert all(-32768 <= code <= -32000 or code == -32800 for code in ERROR_NAMES)


@pytest.mark.parametrize(("code", "name"), sorted(ERROR_NAMES.items()), ids=lambda v: str(v))
def test_every_worker_error_code_has_its_remote_error_class(code: int, name: str) -> None:
    classes = remote_classes()
    assert code in classes, f"no RemoteError subclass for {code} ({name})"
    cls = classes[code]
    assert cls.code == code
    assert cls.__name__ == camel(name)
    assert getattr(scm_client, cls.__name__) is cls, "exported from scm_client"


@pytest.mark.parametrize("code", sorted(ERROR_NAMES))
def test_from_error_maps_each_code_to_its_class(code: int) -> None:
    exc = RemoteError.from_error({"code": code, "message": "the message", "data": {"k": 1}})
    assert type(exc) is remote_classes()[code]
    assert exc.code == code and exc.message == "the message" and exc.data == {"k": 1}
    assert str(exc) == f"[{code}] the message"
    assert isinstance(exc, WorkerError)


def test_client_has_no_remote_error_class_the_worker_lacks() -> None:
    assert set(remote_classes()) == set(ERROR_NAMES)


@pytest.mark.parametrize("code", [-32000, -32099, -1, 0, 1234])
def test_unknown_code_is_a_plain_remote_error(code: int) -> None:
    exc = RemoteError.from_error({"code": code, "message": "new"})
    assert type(exc) is RemoteError
    assert exc.code == code and exc.data is None


@pytest.mark.parametrize(
    "error", [{"code": "-32602", "message": "m"}, {"message": "m"}, {"code": None}, {}]
)
def test_malformed_error_object_is_a_plain_remote_error(error: dict[str, Any]) -> None:
    exc = RemoteError.from_error(error)
    assert type(exc) is RemoteError
    assert exc.code == 0
    assert exc.message == str(error.get("message", ""))


# -- properties read data ------------------------------------------------------------------


def test_invalid_params_exposes_field_and_reason() -> None:
    exc = RemoteError.from_error(
        {"code": -32602, "message": "m", "data": {"field": "traces.X[3]", "reason": "r"}}
    )
    assert isinstance(exc, InvalidParams)
    assert exc.field == "traces.X[3]" and exc.reason == "r"


@pytest.mark.parametrize("data", [None, "text", [1], {"field": 3, "reason": None}])
def test_invalid_params_without_usable_data_has_none(data: Any) -> None:
    exc = InvalidParams(-32602, "m", data)
    assert exc.field is None and exc.reason is None


def test_validation_failed_exposes_its_data() -> None:
    exc = RemoteError.from_error(
        {
            "code": -32001,
            "message": "m",
            "data": {
                "r2_scores": {"Y": 0.5},
                "mean_r2": 1,
                "threshold": 0.7,
                "rule": "mean",
                "failed_nodes": ["Y"],
                "model_id": "abc",
            },
        }
    )
    assert isinstance(exc, ValidationFailed)
    assert exc.r2_scores == {"Y": 0.5}
    assert exc.mean_r2 == 1.0 and isinstance(exc.mean_r2, float)
    assert exc.threshold == 0.7
    assert exc.failed_nodes == ["Y"]
    assert exc.model_id == "abc"


def test_validation_failed_without_data_has_empty_defaults() -> None:
    exc = ValidationFailed(-32001, "m")
    assert exc.r2_scores == {} and exc.failed_nodes == []
    assert exc.mean_r2 is None and exc.threshold is None and exc.model_id is None


def test_numbers_that_are_booleans_or_text_are_not_numbers() -> None:
    exc = ValidationFailed(-32001, "m", {"mean_r2": True, "threshold": "0.7"})
    assert exc.mean_r2 is None and exc.threshold is None


def test_insufficient_data_exposes_counts_only_when_integers() -> None:
    exc = RemoteError.from_error(
        {"code": -32002, "message": "m", "data": {"num_samples": 50, "min_samples": 100}}
    )
    assert isinstance(exc, InsufficientData)
    assert (exc.num_samples, exc.min_samples) == (50, 100)
    odd = InsufficientData(-32002, "m", {"num_samples": 50.0, "min_samples": True})
    assert odd.num_samples is None and odd.min_samples is None


def test_model_not_found_and_unsupported_query_expose_their_data() -> None:
    missing = RemoteError.from_error(
        {"code": -32003, "message": "m", "data": {"model_id": "x", "reason": "evicted"}}
    )
    assert isinstance(missing, ModelNotFound)
    assert missing.model_id == "x" and missing.reason == "evicted"
    unsupported = RemoteError.from_error({"code": -32007, "message": "m", "data": {"node": "Y"}})
    assert isinstance(unsupported, UnsupportedQuery) and unsupported.node == "Y"


def test_invalid_argument_matches_the_workers_error_shape() -> None:
    exc = errors.invalid_argument("traces.X[2]", "infinite")
    assert isinstance(exc, InvalidParams) and exc.code == -32602
    assert exc.message == "Invalid params: traces.X[2]: infinite"  # as worker's invalid_params
    assert exc.data == {"field": "traces.X[2]", "reason": "infinite"}


def test_process_errors_carry_their_details() -> None:
    crashed = WorkerCrashed("the worker exited", 3, "line 1\nline 2")
    assert crashed.exit_code == 3 and crashed.stderr_tail == "line 1\nline 2"
    assert "(exit code 3)" in str(crashed) and "line 2" in str(crashed)
    assert "exit code" not in str(WorkerCrashed("gone"))
    start = WorkerStartError("no handshake", "Traceback ...")
    assert start.stderr_tail == "Traceback ..." and "Traceback ..." in str(start)
    timeout = WorkerTimeout("fit", 2.5)
    assert timeout.method == "fit" and timeout.timeout == 2.5 and "2.5" in str(timeout)


@pytest.mark.parametrize(
    "cls",
    [
        errors.WorkerStartError,
        errors.WorkerCrashed,
        errors.WorkerTimeout,
        errors.WorkerClosed,
        errors.ProtocolError,
        errors.RemoteError,
    ],
)
def test_every_client_error_is_a_worker_error(cls: type[Exception]) -> None:
    assert issubclass(cls, WorkerError)


# -- RestartPolicy -------------------------------------------------------------------------


def test_restart_policy_allows_max_restarts_in_a_row() -> None:
    policy = RestartPolicy(max_restarts=2)
    assert policy.may_restart()
    policy.record_restart()
    assert policy.may_restart()
    policy.record_restart()
    assert not policy.may_restart()
    assert policy.restarts_in_a_row == 2


def test_restart_policy_success_starts_the_count_over() -> None:
    policy = RestartPolicy(max_restarts=1)
    policy.record_restart()
    assert not policy.may_restart()
    policy.record_success()
    assert policy.restarts_in_a_row == 0 and policy.may_restart()


def test_restart_policy_zero_never_restarts() -> None:
    assert not RestartPolicy(max_restarts=0).may_restart()


def test_restart_policy_default_is_three() -> None:
    policy = RestartPolicy()
    for _ in range(3):
        assert policy.may_restart()
        policy.record_restart()
    assert not policy.may_restart()


# -- _wire: graphs -------------------------------------------------------------------------


class FakeScalar:
    """numpy-like scalar: only ``.item()``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


class FakeArray:
    """numpy-like array / pandas-like Series: only ``.tolist()`` and iteration."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def tolist(self) -> list[Any]:
        return list(self.values)

    def __iter__(self) -> Any:
        raise AssertionError("must be converted through tolist(), not iterated")


class FakeFrame:
    """pandas-like DataFrame: ``columns`` and ``frame[column]``."""

    def __init__(self, data: dict[Any, list[Any]]) -> None:
        self.data = data

    @property
    def columns(self) -> list[Any]:
        return list(self.data)

    def __getitem__(self, column: Any) -> FakeArray:
        return FakeArray(self.data[column])


class FakeDiGraph:
    """networkx-like: iterable ``nodes`` and ``edges`` views."""

    def __init__(self, nodes: list[Any], edges: list[tuple[Any, Any]]) -> None:
        self.nodes = tuple(nodes)
        self.edges = tuple(edges)


def test_graph_from_a_nodes_and_edges_dict() -> None:
    wire = graph_to_wire({"nodes": ["X", "Y", "Z"], "edges": [("X", "Y"), ["Y", "Z"]]})
    assert wire == {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}


def test_graph_dict_without_nodes_takes_them_from_the_edges_in_order() -> None:
    assert graph_to_wire({"edges": [("B", "A"), ("A", "C")]}) == {
        "nodes": ["B", "A", "C"],
        "edges": [["B", "A"], ["A", "C"]],
    }


def test_graph_dict_with_only_nodes_has_no_edges() -> None:
    wire = graph_to_wire({"nodes": ["solo"]})
    assert wire["nodes"] == ["solo"]
    assert wire.get("edges", []) == []  # the worker reads a missing "edges" as none


def test_graph_from_an_edge_list() -> None:
    assert graph_to_wire([("X", "Y"), ("X", "Z"), ("Y", "Z")]) == {
        "nodes": ["X", "Y", "Z"],
        "edges": [["X", "Y"], ["X", "Z"], ["Y", "Z"]],
    }


def test_graph_from_a_digraph_keeps_isolated_nodes() -> None:
    graph = FakeDiGraph(["X", "Y", "lonely"], [("X", "Y")])
    assert graph_to_wire(graph) == {"nodes": ["X", "Y", "lonely"], "edges": [["X", "Y"]]}


def test_graph_node_names_from_numpy_scalars_become_plain() -> None:
    wire = graph_to_wire([(FakeScalar("X"), FakeScalar("Y"))])
    assert wire == {"nodes": ["X", "Y"], "edges": [["X", "Y"]]}
    assert all(type(n) is str for n in wire["nodes"])


@pytest.mark.parametrize("graph", [42, "XY", None])
def test_graph_of_another_shape_is_a_type_error(graph: Any) -> None:
    with pytest.raises(TypeError, match="graph"):
        graph_to_wire(graph)


# -- _wire: traces -------------------------------------------------------------------------


def test_nan_in_traces_is_sent_as_null() -> None:
    assert traces_to_wire({"X": [1.0, math.nan, 3]}) == {"X": [1.0, None, 3]}


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinity_in_traces_raises_invalid_params_naming_the_cell(bad: float) -> None:
    with pytest.raises(InvalidParams) as caught:
        traces_to_wire({"ok": [1, 2, 3], "X": [0.0, 1.0, bad]})
    assert caught.value.field == "traces.X[2]"
    assert caught.value.code == -32602


def test_infinity_in_other_row_sets_names_that_field() -> None:
    with pytest.raises(InvalidParams) as caught:
        traces_to_wire({"X": [math.inf]}, "observed")
    assert caught.value.field == "observed.X[0]"


def test_numpy_like_columns_and_scalars_are_converted() -> None:
    wire = traces_to_wire(
        {"X": FakeArray([1.0, math.nan]), "Y": [FakeScalar(2), FakeScalar(math.nan)]}
    )
    assert wire == {"X": [1.0, None], "Y": [2, None]}


def test_numpy_like_infinite_scalar_is_refused() -> None:
    with pytest.raises(InvalidParams) as caught:
        traces_to_wire({"Y": [FakeScalar(1.0), FakeScalar(-math.inf)]})
    assert caught.value.field == "traces.Y[1]"


def test_dataframe_like_traces_are_read_column_by_column() -> None:
    frame = FakeFrame({"X": [1, 2], 7: ["a", None], "B": [True, False]})
    assert traces_to_wire(frame) == {"X": [1, 2], "7": ["a", None], "B": [True, False]}


@pytest.mark.parametrize("binary", [False, True])
def test_a_column_that_is_no_column_goes_as_given_for_the_worker_to_name(binary: bool) -> None:
    """A request file's ``"X": "abc"`` or ``"X": 5`` is the worker's -32602 on ``traces.X``,
    not three one-letter rows; a block already encoded travels as it is."""
    block = {"dtype": "float64", "data": "AAAAAAAA8D8="}
    odd = {"S": "abc", "N": 5, "B": block, "G": None}
    assert traces_to_wire(odd, binary=binary) == odd


@pytest.mark.parametrize("traces", [[[1, 2]], "X", None, 3])
def test_traces_of_another_shape_is_a_type_error(traces: Any) -> None:
    with pytest.raises(TypeError, match="traces"):
        traces_to_wire(traces)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=5),
            st.floats(allow_infinity=False),
        )
    )
)
def test_column_to_wire_keeps_every_value_but_nan(values: list[Any]) -> None:
    wire = column_to_wire(values, "traces.X")
    assert len(wire) == len(values)
    for sent, original in zip(wire, values, strict=True):
        if isinstance(original, float) and math.isnan(original):
            assert sent is None
        else:
            assert sent == original and type(sent) is type(original)


def test_plain_and_to_jsonable_unwrap_numpy_like_values() -> None:
    assert plain(FakeScalar(3)) == 3
    assert plain("s") == "s" and plain(None) is None
    nested = {"interventions": (FakeScalar(1), {"value": FakeArray([1, 2])}), 5: FakeScalar("n")}
    assert to_jsonable(nested) == {"interventions": [1, {"value": [1, 2]}], "5": "n"}
