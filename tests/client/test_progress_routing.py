"""A ``progress`` notification reaches the call whose id it names, whichever call is oldest.

The real worker runs one request at a time in arrival order, so there the oldest waiting
call is always the one that reports progress: a client that routed every notification
to its oldest call would pass every test against it. The fake (tests/client/fake_worker.py)
holds a ``defer`` unanswered and reports progress for a later request meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scm_client import Worker

MakeFake = Callable[..., Worker]


def test_progress_for_the_second_request_reaches_the_second_caller_only(
    make_fake: MakeFake,
) -> None:
    first_heard: list[dict[str, Any]] = []
    second_heard: list[dict[str, Any]] = []
    other_heard: list[Any] = []  # the Worker's own callback: for calls that brought none
    worker = make_fake(on_progress=other_heard.append)
    first = worker.submit("defer", {"value": "first"}, on_progress=first_heard.append)
    second = worker.submit("progress", on_progress=second_heard.append)
    assert second.result(timeout=10) == "done"
    assert not first.done(), "the first call was answered: it no longer waits"
    assert [p["request_id"] for p in second_heard] == [second.request_id], second_heard
    assert second_heard[0]["stage"] == "fit"
    assert first_heard == [] and other_heard == []
    assert worker.call("flush") == "flushed"
    assert first.result(timeout=10) == "first"
    assert first_heard == []
