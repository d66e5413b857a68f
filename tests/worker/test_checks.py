"""scm_worker.checks: graph, trace and config checks, each error naming its field."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scm_worker.checks import (
    MAX_SEED,
    FitConfig,
    Graph,
    parse_fit_config,
    parse_fit_request,
    parse_graph,
    parse_traces,
)
from scm_worker.errors import INVALID_PARAMS, LIMIT_EXCEEDED, WorkerError
from scm_worker.limits import Limits

LIMITS = Limits()


def invalid(call: Any, *args: Any) -> dict[str, Any]:
    """Run ``call(*args)``, expect -32602 and return its data."""
    with pytest.raises(WorkerError) as caught:
        call(*args)
    assert caught.value.code == INVALID_PARAMS, caught.value.message
    data = caught.value.data
    assert isinstance(data, dict) and {"field", "reason"} <= set(data)
    assert caught.value.message == f"Invalid params: {data['field']}: {data['reason']}"
    return data


# -- parse_graph ---------------------------------------------------------------------------


def test_graph_is_parsed_with_duplicate_edges_collapsed() -> None:
    graph = parse_graph(
        {"nodes": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"], ["a", "b"]]}, LIMITS
    )
    assert graph == Graph(("a", "b", "c"), (("a", "b"), ("b", "c")))
    assert graph.parents("c") == ["b"]


def test_graph_edges_default_to_none() -> None:
    assert parse_graph({"nodes": ["solo"]}, LIMITS) == Graph(("solo",), ())


def test_self_loop_names_the_edge() -> None:
    data = invalid(parse_graph, {"nodes": ["a", "b"], "edges": [["a", "b"], ["b", "b"]]}, LIMITS)
    assert data["field"] == "graph.edges[1]"
    assert "self-loop" in data["reason"] and "'b'" in data["reason"]


def test_cycle_is_refused_naming_its_nodes() -> None:
    data = invalid(
        parse_graph,
        {"nodes": ["a", "b", "c", "d"], "edges": [["d", "a"], ["a", "b"], ["b", "c"], ["c", "a"]]},
        LIMITS,
    )
    assert data["field"] == "graph.edges"
    assert "not a DAG" in data["reason"]
    for node in ("'a'", "'b'", "'c'"):
        assert node in data["reason"]
    assert "'d'" not in data["reason"]  # d is upstream of the cycle and could be ordered


def test_two_node_cycle_is_refused() -> None:
    data = invalid(parse_graph, {"nodes": ["x", "y"], "edges": [["x", "y"], ["y", "x"]]}, LIMITS)
    assert data["field"] == "graph.edges"


@pytest.mark.parametrize("edge_index", [0, 1])
def test_unknown_node_in_an_edge_names_the_edge(edge_index: int) -> None:
    edges = [["a", "b"], ["a", "b"]]
    edges[edge_index] = ["a", "ghost"] if edge_index else ["ghost", "b"]
    data = invalid(parse_graph, {"nodes": ["a", "b"], "edges": edges}, LIMITS)
    assert data["field"] == f"graph.edges[{edge_index}]"
    assert "'ghost'" in data["reason"] and "graph.nodes" in data["reason"]


def test_duplicate_node_names_its_second_position() -> None:
    data = invalid(parse_graph, {"nodes": ["a", "b", "a"], "edges": []}, LIMITS)
    assert data["field"] == "graph.nodes[2]"
    assert "duplicate" in data["reason"] and "'a'" in data["reason"]


@pytest.mark.parametrize("edge", [["a"], ["a", "b", "b"], "ab", {"a": "b"}, None, []])
def test_edge_that_is_not_a_pair_names_the_edge(edge: Any) -> None:
    data = invalid(parse_graph, {"nodes": ["a", "b"], "edges": [["a", "b"], edge]}, LIMITS)
    assert data["field"] == "graph.edges[1]"
    assert "pair" in data["reason"]


@pytest.mark.parametrize(
    ("graph", "field"),
    [
        ([["a", "b"]], "graph"),
        ({"nodes": "ab"}, "graph.nodes"),
        ({"edges": [["a", "b"]]}, "graph.nodes"),
        ({"nodes": []}, "graph.nodes"),
        ({"nodes": ["a", ""]}, "graph.nodes[1]"),
        ({"nodes": ["a", 3]}, "graph.nodes[1]"),
        ({"nodes": ["a"], "edges": {"a": "b"}}, "graph.edges"),
        ({"nodes": ["a"], "edges": [], "directed": True}, "graph.directed"),
    ],
    ids=[
        "not-an-object",
        "nodes-not-array",
        "nodes-missing",
        "no-nodes",
        "empty-name",
        "non-string-name",
        "edges-not-array",
        "unknown-member",
    ],
)
def test_malformed_graph_names_the_field(graph: Any, field: str) -> None:
    assert invalid(parse_graph, graph, LIMITS)["field"] == field


def test_too_many_nodes_is_limit_exceeded() -> None:
    with pytest.raises(WorkerError) as caught:
        parse_graph({"nodes": ["a", "b", "c", "d"]}, Limits(max_nodes=3))
    assert caught.value.code == LIMIT_EXCEEDED
    assert caught.value.data == {"limit": "max_nodes", "value": 4, "max": 3, "field": "graph.nodes"}


def test_too_many_edges_is_limit_exceeded() -> None:
    with pytest.raises(WorkerError) as caught:
        parse_graph(
            {"nodes": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"]]}, Limits(max_edges=1)
        )
    assert caught.value.code == LIMIT_EXCEEDED
    assert caught.value.data["limit"] == "max_edges"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=8).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=20),
        )
    )
)
def test_forward_edges_always_parse_and_one_back_edge_on_a_path_makes_a_cycle(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = case
    nodes = [f"n{i}" for i in range(n)]
    forward = [[nodes[min(a, b)], nodes[max(a, b)]] for a, b in pairs if a != b]
    graph = parse_graph({"nodes": nodes, "edges": forward}, LIMITS)
    assert graph.nodes == tuple(nodes)
    assert len(graph.edges) == len({tuple(e) for e in forward})
    # a chain n0 → … → n{n-1} plus the back edge n{n-1} → n0 is a cycle through every node
    chain = [[nodes[i], nodes[i + 1]] for i in range(n - 1)]
    data = invalid(
        parse_graph, {"nodes": nodes, "edges": forward + chain + [[nodes[-1], nodes[0]]]}, LIMITS
    )
    assert data["field"] == "graph.edges"


# -- parse_traces --------------------------------------------------------------------------


def test_traces_are_parsed_in_graph_order_with_their_kinds() -> None:
    columns = parse_traces(
        {"flag": [True, False, None], "x": [1, 2.5, None], "s": ["a", None, "b"]},
        ("x", "s", "flag"),
        LIMITS,
    )
    assert list(columns) == ["x", "s", "flag"]
    assert (columns["x"].kind, columns["x"].values) == ("numeric", [1, 2.5, None])
    assert (columns["s"].kind, columns["s"].values) == ("categorical", ["a", None, "b"])
    assert (columns["flag"].kind, columns["flag"].values) == ("boolean", [True, False, None])


def test_null_is_allowed_and_an_all_null_column_is_numeric() -> None:
    columns = parse_traces({"x": [None, None], "y": [1.0, None]}, ("x", "y"), LIMITS)
    assert columns["x"].kind == "numeric" and columns["x"].values == [None, None]


@pytest.mark.parametrize(
    ("traces", "missing_in_traces", "missing_in_graph"),
    [({"X": [1]}, ["Y"], []), ({"X": [1], "Z": [1]}, ["Y"], ["Z"])],
    ids=["column-missing", "and-an-extra-one"],
)
def test_a_missing_node_column_is_refused_naming_it_and_the_ignored_ones(
    traces: dict[str, Any], missing_in_traces: list[str], missing_in_graph: list[str]
) -> None:
    data = invalid(parse_traces, traces, ("X", "Y"), LIMITS)
    assert data["field"] == "traces"
    assert data["missing_in_traces"] == missing_in_traces
    assert data["missing_in_graph"] == missing_in_graph
    assert f"no column for {missing_in_traces}" in data["reason"]


def test_columns_that_are_not_nodes_are_named_and_never_decoded() -> None:
    junk = {"dtype": "float64", "data": "not base64!"}  # decoding it would be a -32602
    columns = parse_traces({"id": junk, "X": [1.0, 2.0], "date": ["a"]}, ("X",), LIMITS)
    assert list(columns) == ["X"] and columns.ignored == ["id", "date"]


def test_config_extra_columns_error_keeps_the_exact_match_rule() -> None:
    graph = {"nodes": ["X", "Y"], "edges": [["X", "Y"]]}
    traces = {"X": [1.0], "Y": [1.0], "id": [1]}
    _, columns, _ = parse_fit_request(graph, traces, None, LIMITS)
    assert columns.ignored == ["id"]
    data = invalid(parse_fit_request, graph, traces, {"extra_columns": "error"}, LIMITS)
    assert data["field"] == "traces" and data["missing_in_graph"] == ["id"]
    assert "trace columns must match graph nodes exactly" in data["reason"]
    bad = invalid(parse_fit_request, graph, traces, {"extra_columns": "drop"}, LIMITS)
    assert bad["field"] == "config.extra_columns"


def test_mismatch_uses_the_given_field_name() -> None:
    assert invalid(parse_traces, {"X": [1]}, ("X", "Y"), LIMITS, "observed")["field"] == "observed"


def test_unequal_lengths_report_every_length() -> None:
    data = invalid(parse_traces, {"X": [1, 2, 3], "Y": [1, 2]}, ("X", "Y"), LIMITS)
    assert data["field"] == "traces"
    assert data["lengths"] == {"X": 3, "Y": 2}


@pytest.mark.parametrize(
    ("column", "kinds"),
    [
        ([1, "a"], "['categorical', 'numeric']"),
        ([True, 1], "['boolean', 'numeric']"),
        (["a", None, False], "['boolean', 'categorical']"),
    ],
)
def test_mixed_value_types_name_the_column(column: list[Any], kinds: str) -> None:
    data = invalid(parse_traces, {"X": column}, ("X",), LIMITS)
    assert data["field"] == "traces.X"
    assert kinds in data["reason"]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_number_names_the_cell(bad: float) -> None:
    data = invalid(parse_traces, {"X": [1.0, 2.0, bad]}, ("X",), LIMITS)
    assert data["field"] == "traces.X[2]"
    assert "finite" in data["reason"]


@pytest.mark.parametrize("bad", [[1], {"a": 1}])
def test_value_of_another_json_type_names_the_cell(bad: Any) -> None:
    data = invalid(parse_traces, {"X": [1, bad]}, ("X",), LIMITS)
    assert data["field"] == "traces.X[1]"


def test_column_that_is_not_an_array_names_the_column() -> None:
    assert invalid(parse_traces, {"X": "1,2,3"}, ("X",), LIMITS)["field"] == "traces.X"


def test_traces_not_an_object() -> None:
    assert invalid(parse_traces, [[1, 2]], ("X",), LIMITS)["field"] == "traces"


def test_too_many_rows_and_cells_are_limit_exceeded() -> None:
    with pytest.raises(WorkerError) as caught:
        parse_traces({"X": [1, 2, 3]}, ("X",), Limits(max_rows=2))
    assert caught.value.code == LIMIT_EXCEEDED and caught.value.data["limit"] == "max_rows"
    with pytest.raises(WorkerError) as caught:
        parse_traces({"X": [1, 2], "Y": [1, 2]}, ("X", "Y"), Limits(max_cells=3))
    assert caught.value.code == LIMIT_EXCEEDED and caught.value.data["limit"] == "max_cells"


# -- parse_fit_config ----------------------------------------------------------------------


def test_missing_config_is_the_defaults() -> None:
    assert parse_fit_config(None) == FitConfig()
    assert parse_fit_config({}) == FitConfig()


def test_config_values_are_taken() -> None:
    config = parse_fit_config(
        {
            "quality": "better",
            "seed": 7,
            "test_size": 0.5,
            "r2_rule": "each",
            "r2_threshold": 1,
            "missing": "error",
        }
    )
    assert (config.quality, config.seed, config.test_size, config.r2_rule) == (
        "BETTER",
        7,
        0.5,
        "each",
    )
    assert config.r2_threshold == 1.0 and isinstance(config.r2_threshold, float)


def test_unknown_config_key_names_it() -> None:
    data = invalid(parse_fit_config, {"seed": 1, "zzz": 1, "qualiti": "GOOD"})
    assert data["field"] == "config.qualiti"  # the first unknown key, alphabetically
    assert "unknown" in data["reason"]


@pytest.mark.parametrize("quality", ["ULTRA", "", 1, None, ["GOOD"]])
def test_bad_quality_is_refused(quality: Any) -> None:
    data = invalid(parse_fit_config, {"quality": quality})
    assert data["field"] == "config.quality"
    assert "GOOD" in data["reason"]


@pytest.mark.parametrize("quality", ["good", "Good", "BEST"])
def test_quality_is_case_insensitive(quality: str) -> None:
    assert parse_fit_config({"quality": quality}).quality == quality.upper()


@pytest.mark.parametrize("test_size", [0, 0.0, 1, 1.0, -0.1, 1.5, math.inf, True, "0.2"])
def test_test_size_must_be_strictly_between_0_and_1(test_size: Any) -> None:
    assert invalid(parse_fit_config, {"test_size": test_size})["field"] == "config.test_size"


@pytest.mark.parametrize("test_size", [1e-9, 0.5, 0.999999])
def test_test_size_inside_the_bounds_is_accepted(test_size: float) -> None:
    assert parse_fit_config({"test_size": test_size}).test_size == test_size


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.0, True, "1"])
def test_seed_out_of_bounds_or_not_an_integer_is_refused(seed: Any) -> None:
    data = invalid(parse_fit_config, {"seed": seed})
    assert data["field"] == "config.seed"
    assert str(MAX_SEED) in data["reason"]


@pytest.mark.parametrize("seed", [None, 0, MAX_SEED])
def test_seed_bounds_are_inclusive(seed: int | None) -> None:
    assert MAX_SEED == 2**32 - 1
    assert parse_fit_config({"seed": seed}).seed == seed


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"validate_r2": 1}, "config.validate_r2"),
        ({"r2_threshold": "high"}, "config.r2_threshold"),
        ({"r2_rule": "median"}, "config.r2_rule"),
        ({"min_samples": 1}, "config.min_samples"),
        ({"missing": "impute"}, "config.missing"),
        ({"linear_tolerance": -0.5}, "config.linear_tolerance"),
        ({"persist": "yes"}, "config.persist"),
        ("GOOD", "config"),
    ],
)
def test_other_bad_config_values_name_their_key(config: Any, field: str) -> None:
    assert invalid(parse_fit_config, config)["field"] == field
