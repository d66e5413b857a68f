"""_jsonline.encode_line: base64 spliced in as bytes, the rest strict JSON as before."""

from __future__ import annotations

import base64
import json
import math
from array import array

import pytest
from scm_client._jsonline import AsciiText, encode_line
from scm_client._wire import binary_column


def test_binary_columns_are_spliced_where_they_sit_and_the_line_parses() -> None:
    columns = {name: binary_column([float(i) for i in range(n)]) for name, n in (("a", 1), ("b", 3))}
    columns["flags"] = binary_column([True, False])
    message = {"params": {"traces": columns, "note": "\0 \"quoted\" \\ é\ud800", "xs": [1, None]}}
    line = encode_line(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    parsed = json.loads(line)
    assert parsed["params"]["note"] == message["params"]["note"]
    assert parsed["params"]["xs"] == [1, None]
    traces = parsed["params"]["traces"]
    assert array("d", base64.b64decode(traces["b"]["data"])).tolist() == [0.0, 1.0, 2.0]
    assert array("d", base64.b64decode(traces["a"]["data"])).tolist() == [0.0]
    assert base64.b64decode(traces["flags"]["data"]) == b"\1\0"


def test_a_message_without_binary_columns_is_plain_json() -> None:
    message = {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"é": [0.5]}}
    assert encode_line(message) == json.dumps(message, separators=(",", ":")).encode() + b"\n"


def test_nan_and_unknown_objects_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_line({"x": math.nan, "data": AsciiText(b"AAAA")})
    with pytest.raises(TypeError):
        encode_line({"x": object()})
