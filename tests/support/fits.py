"""What two fits of the same request on the same seed must share (3.13 suites)."""

from __future__ import annotations

from typing import Any

#: what differs between two runs of one seeded fit: its time, its nodes' task times
TIMINGS = ("fitting_time_ms", "node_fit_ms")


def without_run_details(result: dict[str, Any]) -> dict[str, Any]:
    """A fit result without its model id and timings, for comparing two fits whole."""
    result.pop("model_id")
    for timing in TIMINGS:
        result["metadata"].pop(timing)
    return result
