"""``$/cancelRequest`` and a closing connection, on the daemon's socket and on stdio.

Every cancellation test runs over both transports with the same calls (``LinePeer``):
a queued request answers -32800 ``queued`` at once, a running ``debug.sleep`` -32800
``running``, and a running fit of the benchmark's 100-node DAG stops within seconds
while the worker keeps its pid, its warm state and its loky processes (the next fit
is as fast as a warm one). Each query that can run long (``influence``, ``anomaly``,
``distribution_change``, ``effect`` with an interval) is interrupted where it is, in
DoWhy's code, once its ``computing`` progress says it runs. A closed connection cancels
its work (socket only: stdio's end of input finishes the requests already read, by design).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.daemon import DaemonProcess, LinePeer, PipePeer
from support.procs import descendants, pid_alive, wait_until
from support.timing import assert_within, stretched
from support.worker_env import JOBLIB_THREADS

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: shadows nothing
import datagen

if TYPE_CHECKING:
    from conftest import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]

REQUEST_CANCELLED = -32800
#: the issue's target is 1 s on the benchmark's 100-node fit, asserted at low load; beside it
#: a liveness bound, stretched by the load (support.timing): a running fit stops once its
#: node tasks in flight finish, and at a load of 12 on 2 cores one takes seconds. The
#: stretched bound still fails a cancel that waits for the fit to end (a minute here).
CANCEL_TARGET_S = 1.0
CANCEL_LIVENESS_S = 3.0


def assert_cancelled(reply: dict[str, Any], stage: str, request_id: Any) -> None:
    assert set(reply) == {"jsonrpc", "error", "id"} and reply["id"] == request_id, reply
    assert reply["error"]["code"] == REQUEST_CANCELLED, reply
    assert reply["error"]["data"] == {"id": request_id, "stage": stage}, reply
    assert reply["error"]["message"].startswith("Request cancelled"), reply


class Served:
    """A peer and the pid of the process that serves it, whichever the transport."""

    def __init__(self, peer: LinePeer, pid: int, connect: Callable[[], LinePeer] | None) -> None:
        self.peer = peer
        self.pid = pid
        self.connect = connect  # another connection (socket only)

    def running_id(self) -> Any:
        return (self.peer.result("status")["running"] or {}).get("id")


@pytest.fixture(params=["socket", "stdio"])
def served(request: pytest.FixtureRequest, start_daemon: Callable[..., DaemonProcess],
           spawn_worker: Callable[..., WorkerProcess]) -> Iterator[Served]:
    # two threads: a cancel must leave joblib's loky processes as they were
    if request.param == "socket":
        daemon = start_daemon(*JOBLIB_THREADS)
        yield Served(daemon.connect(), daemon.pid, daemon.connect)
    else:
        worker = spawn_worker(threads=2)
        yield Served(PipePeer(worker), worker.pid, None)


def test_a_queued_request_is_cancelled_at_once(served: Served) -> None:
    peer = served.peer
    running = peer.request("debug.sleep", {"seconds": 60})
    queued = peer.request("debug.sleep", {"seconds": 0}, id_="queued-one")
    wait_until(lambda: served.running_id() == running, 30, "the first sleep to run")
    started = time.monotonic()
    peer.cancel(queued)
    assert_cancelled(peer.reply_to(queued, timeout=5), "queued", queued)
    print(f"queued cancel answered in {(time.monotonic() - started) * 1000:.1f} ms")
    assert served.running_id() == running  # the running one was not touched
    peer.cancel(running)
    assert_cancelled(peer.reply_to(running), "running", running)
    assert peer.result("ping") == "pong"


def test_a_running_sleep_is_cancelled(served: Served) -> None:
    peer = served.peer
    sleeping = peer.request("debug.sleep", {"seconds": 60}, id_="sleeper")
    wait_until(lambda: served.running_id() == sleeping, 30, "the sleep to run")
    started = time.monotonic()
    peer.cancel(sleeping)
    assert_cancelled(peer.reply_to(sleeping, timeout=10), "running", sleeping)
    assert_within("running sleep cancelled", time.monotonic() - started,
                  target=CANCEL_TARGET_S, liveness=CANCEL_LIVENESS_S)
    assert peer.result("debug.sleep", {"seconds": 0.01}) == 0.01  # the compute thread serves on


def test_cancel_request_sent_as_a_request_says_what_it_found(served: Served) -> None:
    peer = served.peer
    running = peer.request("debug.sleep", {"seconds": 60})
    queued = peer.request("debug.sleep", {"seconds": 0})
    wait_until(lambda: served.running_id() == running, 30, "the sleep to run")

    def cancel_by_request(target: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        ask = peer.request("$/cancelRequest", {"id": target})
        replies = {r["id"]: r for r in (peer.read_json(timeout=10), peer.read_json(timeout=10))}
        assert set(replies) == {ask, target}, replies
        return replies[ask], replies[target]

    answer, cancelled = cancel_by_request(queued)
    assert answer["result"] == {"cancelled": "queued"}
    assert_cancelled(cancelled, "queued", queued)
    answer, cancelled = cancel_by_request(running)
    assert answer["result"] == {"cancelled": "running"}
    assert_cancelled(cancelled, "running", running)
    # finished, unknown, or not an id at all: null as a request, nothing as a notification
    for target in (running, "never-sent", 424242, None, [1]):
        assert peer.result("$/cancelRequest", {"id": target}) == {"cancelled": None}
        peer.cancel(target)
    assert peer.call("ping")["result"] == "pong"  # the very next line: the notifications said nothing


def test_a_request_whose_reply_was_read_is_no_longer_running(served: Served) -> None:
    """``status`` sent after a reply was read must not show that request still running
    (the compute thread once wrote the reply before it cleared its running job)."""
    peer = served.peer
    for n in range(100):
        done = peer.request("debug.sleep", {"seconds": 0})
        peer.reply_to(done)
        running = peer.result("status")["running"]
        assert running is None, f"call {n}: {running} after its reply was read"


def test_an_id_of_another_connection_is_not_cancelled(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon()
    owner, stranger = daemon.connect(), daemon.connect()
    sleeping = owner.request("debug.sleep", {"seconds": 1.0}, id_=7)
    wait_until(lambda: (stranger.result("status")["running"] or {}).get("id") == 7, 30, "the sleep")
    assert stranger.result("$/cancelRequest", {"id": sleeping}) == {"cancelled": None}
    assert owner.reply_to(sleeping)["result"] == 1.0


def wait_for_node_fits(peer: LinePeer, fit: Any) -> None:
    """Read the fit's progress until a node is fitted: it is inside its node tasks now."""
    while True:
        message = peer.read_json(timeout=300)
        assert "id" not in message, f"the fit ended before it could be cancelled: {message}"
        params = message["params"]
        assert params["request_id"] == fit
        if params["stage"] == "fitting" and params["done"] >= 1:
            return


def test_a_running_100_node_fit_stops_and_the_worker_stays_warm(served: Served) -> None:
    peer = served.peer
    chain = datagen.case_data("chain")
    started = time.perf_counter()
    peer.result("fit", {**chain, "config": {"seed": 1, "cache": False}}, timeout=300)
    cold_s = time.perf_counter() - started
    children = set(descendants(served.pid))
    assert children, "no loky process after a fit"

    fit = peer.request("fit", {**datagen.case_data("dag"), "config": {"seed": 2, "cache": False}})
    wait_for_node_fits(peer, fit)
    asked = time.perf_counter()
    peer.cancel(fit)
    reply = peer.reply_to(fit, timeout=60)
    latency = time.perf_counter() - asked
    assert_cancelled(reply, "running", fit)
    assert_within("100-node fit cancelled after $/cancelRequest", latency,
                  target=CANCEL_TARGET_S, liveness=CANCEL_LIVENESS_S)

    status = peer.result("status")
    assert status["pid"] == served.pid and pid_alive(served.pid)
    assert status["warm"] is True and status["running"] is None
    assert set(descendants(served.pid)) == children, "a loky process was killed or replaced"
    started = time.perf_counter()
    again = peer.result("fit", {**chain, "config": {"seed": 3, "cache": False}}, timeout=300)
    warm_s = time.perf_counter() - started
    print(f"chain fit: cold {cold_s:.2f}s, after the cancel {warm_s:.2f}s")
    assert again["metadata"].get("cache_hit") is not True
    assert warm_s < cold_s / 2, (cold_s, warm_s)
    assert set(descendants(served.pid)) == children


# -- a running query ----------
CHAIN = json.loads((ROOT / "tests" / "fixtures" / "linear_chain.json").read_text())
DO_X = [{"type": "hard", "node": "X", "value": 2.0}]


def chain_rows(start: int, stop: int, shift: float = 0.0) -> dict[str, list[float]]:
    traces = CHAIN["traces"]
    return {node: [v + shift for v in values[start:stop]] for node, values in traces.items()}


#: each runs 2-4 s of CPU on the 3-node chain uncancelled (tens of seconds on a loaded
#: machine): long past the cancel, short enough for a mutant that ignores it to finish
LONG_QUERIES: dict[str, dict[str, Any]] = {
    "influence": {"target": "Z", "num_samples_randomization": 2000, "num_samples_baseline": 4000},
    "anomaly": {"target": "Z", "rows": chain_rows(0, 6)},
    "distribution_change": {"target": "Z", "old": chain_rows(0, 600),
                            "new": chain_rows(400, 1000, shift=1.0)},
    "effect": {"target": "Z", "alternative": DO_X, "reference": [], "confidence": 0.9,
               "num_samples": 150_000, "num_bootstrap": 200},
}


@pytest.fixture(scope="module")
def chain_worker(_module_worker: list[WorkerProcess]) -> tuple[PipePeer, str]:
    """The module's stdio worker with the chain fitted, shared by the query cancellations."""
    peer = PipePeer(_module_worker[0])
    fitted = peer.result("fit", {"graph": CHAIN["graph"], "traces": CHAIN["traces"],
                                 "config": {"seed": 1}}, timeout=300)
    return peer, fitted["model_id"]


def wait_for_computing(peer: LinePeer, request_id: Any) -> None:
    """Read the query's progress until ``computing``: it is inside DoWhy's code now."""
    while True:
        message = peer.read_json(timeout=120)
        assert "id" not in message, f"the query ended before it could be cancelled: {message}"
        if message["params"] == {"request_id": request_id, "stage": "computing", "done": 0,
                                 "total": 1}:
            return


@pytest.mark.parametrize("method", sorted(LONG_QUERIES))
def test_a_running_query_is_interrupted_and_the_worker_serves_on(
    chain_worker: tuple[PipePeer, str], method: str,
) -> None:
    peer, model_id = chain_worker
    query = peer.request(method, {"model_id": model_id, "seed": 1, **LONG_QUERIES[method]})
    wait_for_computing(peer, query)
    asked = time.perf_counter()
    peer.cancel(query)
    reply = peer.reply_to(query, timeout=120)
    assert_cancelled(reply, "running", query)  # a query that ran to its end answers a result
    assert_within(f"running {method} cancelled", time.perf_counter() - asked,
                  target=CANCEL_TARGET_S, liveness=CANCEL_LIVENESS_S)
    status = peer.result("status")
    assert status["pid"] == peer.pid and pid_alive(peer.pid) and status["running"] is None
    effect = peer.result("effect", {"model_id": model_id, "seed": 1, "target": "Z",
                                    "alternative": DO_X, "reference": []}, timeout=120)
    assert effect["interval"] is None and effect["effect"] > 0  # no interruption left pending


# -- a connection that closes ----------
def test_a_closed_connection_cancels_its_running_and_queued_work(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = start_daemon()
    leaving, staying = daemon.connect(), daemon.connect()
    leaving.request("debug.sleep", {"seconds": 120}, id_="long")
    leaving.request("debug.sleep", {"seconds": 120}, id_="queued")
    wait_until(lambda: (staying.result("status")["running"] or {}).get("id") == "long", 30,
               "the sleep to run")
    leaving.close()
    closed = time.monotonic()
    wait_until(lambda: staying.result("status")["running"] is None, 1.0,
               "the closed connection's sleep to stop")
    print(f"running request stopped {(time.monotonic() - closed) * 1000:.0f} ms after its "
          "connection closed")
    status = staying.result("status")
    assert status["queue_length"] == 0 and status["connections"] == 1
    assert staying.result("debug.sleep", {"seconds": 0.2}, timeout=10) == 0.2
    daemon.wait_for_log("closed: 1 waiting request(s) dropped")


def test_a_closed_connection_stops_its_running_fit(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon()
    leaving, staying = daemon.connect(), daemon.connect()
    fit = leaving.request("fit", {**datagen.case_data("dag"), "config": {"seed": 4, "cache": False}})
    wait_for_node_fits(leaving, fit)
    leaving.close()
    closed = time.monotonic()
    wait_until(lambda: staying.result("status")["running"] is None,
               stretched(CANCEL_LIVENESS_S),
               "the closed connection's fit to stop", interval=0.05)
    print(f"fit stopped {time.monotonic() - closed:.2f}s after its connection closed")
    assert staying.result("ping") == "pong"
    assert staying.result("status")["models"]["in_memory"] == 0
