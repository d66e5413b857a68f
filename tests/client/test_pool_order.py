"""WorkerPool hands out the biggest fits first, so a batch does not end on one big graph."""

from __future__ import annotations

import base64
import struct
from typing import Any

from scm_client.pool import expected_work, largest_first


def _request(nodes: int, rows: int) -> dict[str, Any]:
    names = [f"n{i}" for i in range(nodes)]
    edges = [[names[0], name] for name in names[1:]]
    return {"graph": {"nodes": names, "edges": edges},
            "traces": {name: [0.0] * rows for name in names}}


def test_largest_first_orders_by_non_root_nodes_times_rows_ties_in_input_order() -> None:
    requests = [_request(3, 100), _request(6, 100), _request(3, 1000), _request(3, 100)]
    assert largest_first(requests) == [2, 1, 0, 3]


def test_a_binary_column_counts_its_rows_from_the_base64_text() -> None:
    data = base64.b64encode(struct.pack("<300d", *([0.5] * 300))).decode()
    request = {"graph": {"nodes": ["a", "b"], "edges": [["a", "b"]]},
               "traces": {"a": {"dtype": "float64", "data": data}, "b": [0.0] * 300}}
    assert expected_work(request) == 300


def test_a_malformed_request_is_ordered_last_not_raised() -> None:
    requests = [{"graph": None}, _request(3, 10), {"traces": {}}]
    assert largest_first(requests) == [1, 0, 2]
