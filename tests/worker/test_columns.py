"""Trace columns in both encodings: JSON lists and binary {dtype, data} blocks.

The two encodings of the same values must give the same column (and the same fit-cache
key); every malformed binary column is a -32602 that names its field.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scm_worker.checks import FitConfig, parse_fit_request, parse_graph, parse_traces
from scm_worker.columns import Column, decode_column, encode_binary, update_digest
from scm_worker.engine.sampling import attached_samples
from scm_worker.errors import INVALID_PARAMS, LIMIT_EXCEEDED, WorkerError
from scm_worker.jsonio import dumps_line
from scm_worker.limits import Limits
from scm_worker.server.session import ATTACHED_METHOD, Session

LIMITS = Limits()


def block(dtype: str, raw: bytes) -> dict[str, str]:
    return {"dtype": dtype, "data": base64.b64encode(raw).decode("ascii")}


def floats(*values: float) -> dict[str, str]:
    return block("float64", struct.pack(f"<{len(values)}d", *values))


def refusal(value: Any, field: str = "traces.X") -> dict[str, Any]:
    with pytest.raises(WorkerError) as caught:
        decode_column(value, field)
    assert caught.value.code == INVALID_PARAMS
    data: dict[str, Any] = caught.value.data
    return data


def digest_of(name: str, column: Column) -> str:
    digest = hashlib.sha256()
    update_digest(digest, name, column)
    return digest.hexdigest()


# -- the same values in either encoding ----------------------------------------------------


def test_float64_block_equals_the_json_list_with_nan_as_null() -> None:
    binary = decode_column(floats(1.5, math.nan, -2.0), "traces.X")
    listed = decode_column([1.5, None, -2.0], "traces.X")
    assert binary.kind == listed.kind == "numeric"
    assert binary.values == listed.values == [1.5, None, -2.0]
    assert digest_of("X", binary) == digest_of("X", listed)


def test_int64_block_is_numeric_like_json_integers() -> None:
    binary = decode_column(block("int64", struct.pack("<3q", 1, -7, 2**40)), "traces.X")
    listed = decode_column([1, -7, 2**40], "traces.X")
    assert binary.values == listed.values == [1.0, -7.0, float(2**40)]
    assert digest_of("X", binary) == digest_of("X", listed)


def test_bool_block_is_boolean_like_json_booleans() -> None:
    binary = decode_column(block("bool", bytes([1, 0, 1])), "traces.X")
    listed = decode_column([True, False, True], "traces.X")
    assert binary.kind == listed.kind == "boolean"
    assert binary.values == listed.values == [True, False, True]
    assert digest_of("X", binary) == digest_of("X", listed)


def test_every_nan_pattern_is_the_same_missing_cell() -> None:
    quiet = struct.pack("<d", math.nan)
    payload = struct.pack("<Q", 0x7FF8_0000_0000_0001)  # a NaN with a payload
    a = decode_column(block("float64", quiet + struct.pack("<d", 1.0)), "traces.X")
    b = decode_column(block("float64", payload + struct.pack("<d", 1.0)), "traces.X")
    assert a.values == b.values == [None, 1.0]
    assert digest_of("X", a) == digest_of("X", b)


def test_a_decoded_column_owns_its_memory() -> None:
    column = decode_column(floats(1.0, 2.0), "traces.X")
    column.data[0] = 5.0  # frombuffer alone would be read-only
    assert column.values == [5.0, 2.0]


def test_fit_request_mixes_encodings_per_column() -> None:
    graph = {"nodes": ["X", "Y"], "edges": [["X", "Y"]]}
    parsed, columns, _ = parse_fit_request(graph, {"X": floats(1.0, 2.0), "Y": ["a", "b"]}, None, LIMITS)
    assert parsed.nodes == ("X", "Y")
    assert (columns["X"].kind, columns["Y"].kind) == ("numeric", "categorical")


def test_encode_binary_round_trips_and_sends_nan_for_non_finite() -> None:
    out = json.loads(dumps_line(encode_binary(np.array([1.0, np.inf, -np.inf, np.nan, 3.0]))))
    assert out["dtype"] == "float64"
    assert decode_column(out, "samples.X").values == [1.0, None, None, None, 3.0]


def test_a_line_splices_ascii_text_in_place_and_stays_strict_json() -> None:
    """The base64 goes into the line as it is, between quotes, wherever it sits."""
    blocks = [encode_binary(np.arange(n, dtype=float)) for n in (0, 1, 5)]
    value = {"a": blocks, "b": "\u0000 \"quoted\" é", "c": [1, None, 2.5]}
    line = dumps_line(value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    parsed = json.loads(line)
    assert parsed["b"] == value["b"] and parsed["c"] == value["c"]
    for n, block in zip((0, 1, 5), parsed["a"], strict=True):
        assert base64.b64decode(block["data"]) == np.arange(n, dtype="<f8").tobytes()
    with pytest.raises(ValueError):
        dumps_line({"x": float("nan")})
    with pytest.raises(TypeError):
        dumps_line({"x": object()})


class _Recorder:
    """A session's writer that keeps what it is given."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def write(self, payload: Any) -> None:
        self.payloads.append(payload)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        raise AssertionError("not used")


def test_attached_parts_are_the_columns_own_bytes_behind_a_notice_naming_the_request() -> None:
    """``$/attached`` names the request and lists each part's size; the parts follow in
    the order the samples name them; a column that needs no change is not copied."""
    columns: dict[str, Any] = {"a": np.arange(3.0), "b": np.arange(0.0), "c": np.array([0.0, np.inf]),
                               "k": ["x", None]}
    kinds: dict[str, Any] = {"a": "numeric", "b": "numeric", "c": "numeric", "k": "categorical"}
    samples, parts = attached_samples(columns, kinds)
    assert samples == {"a": {"dtype": "float64", "attached": 0}, "b": {"dtype": "float64", "attached": 1},
                       "c": {"dtype": "float64", "attached": 2}, "k": ["x", None]}
    assert parts[0].obj is columns["a"]  # its own buffer
    recorder = _Recorder()
    Session(recorder, "test", buffered=False).send_attached("req-7", parts).join()
    [(notice, *sent)] = recorder.payloads
    assert json.loads(notice) == {"jsonrpc": "2.0", "method": ATTACHED_METHOD, "params": {
        "id": "req-7", "parts": [{"dtype": "float64", "bytes": n} for n in (24, 0, 16)]}}
    assert notice.endswith(b"\n") and notice.count(b"\n") == 1
    # non-finite goes out as NaN, as in a base64 block
    assert [bytes(part) for part in sent] == [np.arange(3.0).tobytes(), b"", struct.pack("<2d", 0.0, math.nan)]


# -- malformed binary columns name their field -----------------------------------------------


def test_bad_base64_names_data() -> None:
    data = refusal({"dtype": "float64", "data": "not base64!"})
    assert data["field"] == "traces.X.data" and "base64" in data["reason"]


def test_data_that_is_not_a_string_names_data() -> None:
    assert refusal({"dtype": "float64", "data": [1, 2]})["field"] == "traces.X.data"


def test_length_not_a_multiple_of_the_item_size_names_data() -> None:
    data = refusal(block("float64", b"\0" * 12))
    assert data["field"] == "traces.X.data" and "12 bytes" in data["reason"]


@pytest.mark.parametrize("dtype", ["float32", "int8", "", None, 64, "FLOAT64"])
def test_dtype_outside_the_list_names_dtype(dtype: Any) -> None:
    data = refusal({"dtype": dtype, "data": ""})
    assert data["field"] == "traces.X.dtype"


def test_missing_dtype_names_dtype() -> None:
    assert refusal({"data": ""})["field"] == "traces.X.dtype"


def test_unknown_member_names_it() -> None:
    assert refusal({**floats(1.0), "validity": ""})["field"] == "traces.X.validity"


def test_infinity_in_a_float_block_names_the_cell() -> None:
    data = refusal(floats(1.0, 2.0, math.inf))
    assert data["field"] == "traces.X[2]" and "finite" in data["reason"]


def test_bool_byte_other_than_0_or_1_names_the_cell() -> None:
    assert refusal(block("bool", bytes([0, 1, 2])))["field"] == "traces.X[2]"


def test_a_column_that_is_neither_list_nor_block_names_the_column() -> None:
    assert refusal("1,2,3")["field"] == "traces.X"


def test_row_count_differing_from_the_other_columns_is_refused() -> None:
    with pytest.raises(WorkerError) as caught:
        parse_traces({"X": floats(1.0, 2.0), "Y": [1.0, 2.0, 3.0]}, ("X", "Y"), LIMITS)
    assert caught.value.code == INVALID_PARAMS
    assert caught.value.data["field"] == "traces" and caught.value.data["lengths"] == {"X": 2, "Y": 3}


def test_rows_over_the_limit_are_refused_before_the_values_are_read() -> None:
    small = Limits(max_rows=2)
    with pytest.raises(WorkerError) as caught:
        parse_traces({"X": floats(1.0, 2.0, 3.0)}, ("X",), small)
    assert caught.value.code == LIMIT_EXCEEDED


def test_nan_where_missing_values_are_refused_is_refused_like_null() -> None:
    from scm_worker.engine.frames import to_frame
    from scm_worker.engine.services import complete_rows

    graph = parse_graph({"nodes": ["X"], "edges": []}, LIMITS)
    columns = parse_traces({"X": floats(1.0, math.nan, 2.0)}, graph.nodes, LIMITS)
    config = FitConfig(missing="error")
    with pytest.raises(WorkerError) as caught:
        complete_rows(to_frame(columns), config.missing, "traces")
    assert caught.value.code == INVALID_PARAMS and caught.value.data["field"] == "traces"
    assert "1 rows have missing values" in caught.value.data["reason"]


# -- the decoder, fuzzed: a column or a -32602 naming a field under the column ----------------

_BLOCKS = st.fixed_dictionaries(
    {"dtype": st.one_of(st.sampled_from(["float64", "int64", "bool"]), st.text(max_size=8), st.integers()),
     "data": st.one_of(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
                       st.text(max_size=24), st.none(), st.integers())},
    optional={"extra": st.integers()},
)


@given(st.one_of(_BLOCKS, st.binary(max_size=64).map(lambda b: {"dtype": "float64", "data": base64.b64encode(b).decode()}),
                 st.binary(max_size=32).map(lambda b: {"dtype": "bool", "data": base64.b64encode(b).decode()})))
def test_decoder_returns_a_column_or_names_a_field_under_the_column(value: dict[str, Any]) -> None:
    try:
        column = decode_column(value, "traces.X")
    except WorkerError as exc:
        assert exc.code == INVALID_PARAMS
        assert exc.data["field"] == "traces.X" or exc.data["field"].startswith(("traces.X.", "traces.X["))
        return
    assert column.kind in ("numeric", "boolean")
    assert column.data.dtype == (np.float64 if column.kind == "numeric" else object)
    if column.kind == "numeric":
        assert not np.isinf(column.data).any()
