"""What ``Worker.fit`` writes to the worker: its columns binary when the handshake offers it.

The encoder (``scm_client._wire``) has tests of its own; these read the request line
itself, as the fake worker (tests/client/fake_worker.py, ``FAKE_RECORD_FILE``) received
it, so a ``fit`` that stopped asking the handshake would be seen.
"""

from __future__ import annotations

import base64
import json
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scm_client import Worker

MakeFake = Callable[..., Worker]
GRAPH = {"nodes": ["X", "Y"], "edges": [["X", "Y"]]}
TRACES = {"X": [0.5, 1.5, None, 3.0], "Y": [1, 2, 3, 4], "kind": ["a", "b", "a", "b"]}


def fit_request(record: Path) -> dict[str, Any]:
    """The one ``fit`` request among the lines the fake read."""
    requests = [json.loads(line) for line in record.read_bytes().splitlines() if line.strip()]
    [fit] = [r for r in requests if r.get("method") == "fit"]
    return fit  # type: ignore[no-any-return]


def floats_of(block: dict[str, Any]) -> list[float]:
    assert set(block) == {"dtype", "data"} and block["dtype"] == "float64", block
    return array("d", base64.b64decode(block["data"])).tolist()


def test_fit_sends_numeric_columns_as_binary_blocks_when_the_handshake_offers_them(
    make_fake: MakeFake, tmp_path: Path
) -> None:
    record = tmp_path / "read-by-the-fake"
    worker = make_fake(FAKE_COLUMN_ENCODINGS="json,binary", FAKE_RECORD_FILE=record)
    assert worker.fit(GRAPH, TRACES, seed=1).model_id == "fake"
    traces = fit_request(record)["params"]["traces"]
    x = floats_of(traces["X"])
    assert x[:2] + x[3:] == [0.5, 1.5, 3.0] and x[2] != x[2]  # NaN: the gap
    assert floats_of(traces["Y"]) == [1.0, 2.0, 3.0, 4.0]  # a list's ints go as float64
    assert traces["kind"] == ["a", "b", "a", "b"]  # not numeric: a JSON list


@pytest.mark.parametrize("offered", [None, "json"])
def test_fit_sends_json_lists_when_the_handshake_does_not_offer_binary(
    make_fake: MakeFake, tmp_path: Path, offered: str | None
) -> None:
    record = tmp_path / "read-by-the-fake"
    fake_env = {"FAKE_COLUMN_ENCODINGS": offered} if offered else {}
    worker = make_fake(FAKE_RECORD_FILE=record, **fake_env)
    worker.fit(GRAPH, TRACES, seed=1)
    assert fit_request(record)["params"]["traces"] == TRACES
