"""One client of a shared daemon cannot starve, stall or stop the others (issue 31, item 4).

Each test runs the real daemon (``python -m scm_worker --listen``) with raw Unix-socket
peers: a session that fills its queue is refused -32004 while another is served; a
request's ``timeout_s`` cancels it -32800 whether it waits or runs; a peer that sends
requests for big replies and never reads is dropped while another is served throughout,
long before the daemon's 60 s send timeout; a ``shutdown`` that would stop another
session's work is refused unless it says ``force``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_support import RawWorker
from support.daemon import SocketPeer, Start
from support.procs import wait_until

LIMIT_EXCEEDED = -32004
INVALID_PARAMS = -32602
REQUEST_CANCELLED = -32800
#: the daemon's own send timeout (listener.SEND_TIMEOUT_S): a stalled peer must not cost it
SEND_TIMEOUT_S = 60.0
#: generous bounds for a loaded 2-core machine, far below SEND_TIMEOUT_S
SERVED_WITHIN_S = 20.0




def error_of(reply: dict[str, Any], code: int) -> dict[str, Any]:
    assert "error" in reply and reply["error"]["code"] == code, reply
    return dict(reply["error"])


def wait_running(peer: SocketPeer, request_id: Any) -> None:
    wait_until(lambda: (peer.result("status")["running"] or {}).get("id") == request_id,
               SERVED_WITHIN_S, f"request {request_id} to run")


# -- queue caps --------------------------------------------------------------------------


def test_a_session_filling_its_queue_gets_32004_while_another_sessions_requests_are_served(
    start_daemon: Start,
) -> None:
    daemon = start_daemon()  # the default caps: 256 queued requests per session
    greedy, other = daemon.connect(), daemon.connect()
    running = greedy.request("debug.sleep", {"seconds": 600})
    wait_running(greedy, running)
    queued = [greedy.request("debug.sleep", {"seconds": 0}) for _ in range(256)]
    refused = greedy.request("debug.sleep", {"seconds": 0})
    error = error_of(greedy.reply_to(refused), LIMIT_EXCEEDED)  # at once: the next line
    assert error["data"] == {"limit": "max_queued_requests", "value": 257, "max": 256}
    served = other.request("debug.sleep", {"seconds": 0.001})
    greedy.cancel(running)  # then the sessions in turn: one of the greedy one's, the other's
    assert other.reply_to(served, SERVED_WITHIN_S)["result"] == 0.001
    replies = [greedy.read_json(SERVED_WITHIN_S) for _ in range(len(queued) + 1)]
    assert error_of(replies[0], REQUEST_CANCELLED)["data"] == {"id": running, "stage": "running"}
    assert [r["id"] for r in replies[1:]] == queued and all(r["result"] == 0 for r in replies[1:])
    assert greedy.result("status")["pid"] == daemon.pid


def test_queued_bytes_past_a_cap_are_refused_before_queuing(start_daemon: Start) -> None:
    daemon = start_daemon("--max-queued-bytes", "100000", "--max-inflight-bytes", "200000")
    greedy, second, third, fourth = (daemon.connect() for _ in range(4))
    running = greedy.request("debug.sleep", {"seconds": 600})
    wait_running(greedy, running)
    big = {"text": "x" * 60_000, "target": "stderr"}
    first = greedy.request("debug.print", big)
    refused = greedy.request("debug.print", big)  # its session's bytes: 120,000 and more
    error = error_of(greedy.reply_to(refused), LIMIT_EXCEEDED)
    assert error["data"]["limit"] == "max_queued_bytes" and error["data"]["max"] == 100_000
    assert error["data"]["value"] > 120_000
    # every session's bytes together: two more sessions' requests fill the daemon-wide cap
    queued = [peer.request("debug.print", big) for peer in (second, third)]
    wait_until(lambda: greedy.result("status")["queue_length"] == 3, SERVED_WITHIN_S,
               "both to be queued")  # each session has its own reader: wait for theirs
    refused = fourth.request("debug.print", big)
    error = error_of(fourth.reply_to(refused), LIMIT_EXCEEDED)
    assert error["data"]["limit"] == "max_inflight_bytes" and error["data"]["max"] == 200_000
    assert error["data"]["value"] > 240_000
    greedy.cancel(running)
    error_of(greedy.read_json(SERVED_WITHIN_S), REQUEST_CANCELLED)
    assert greedy.reply_to(first, SERVED_WITHIN_S)["result"] == "stderr"
    for peer, request_id in zip((second, third), queued, strict=True):
        assert peer.reply_to(request_id, SERVED_WITHIN_S)["result"] == "stderr"
    assert fourth.result("debug.print", big) == "stderr"  # room again once they ran


def test_stdio_waits_for_room_instead_of_refusing_its_one_client(
    raw_worker: Callable[..., RawWorker],
) -> None:
    """A private worker's one client may pipe any number of requests (``cat requests.jsonl``):
    past the cap its reader waits for the queue to drain; every request is answered."""
    worker = raw_worker("--no-warmup", "--test-methods", "--no-store", "--max-queued-requests", "2")
    lines = [json.dumps({"jsonrpc": "2.0", "method": "debug.sleep", "params": {"seconds": 0.01},
                         "id": n}) for n in range(40)]
    worker.send_raw(("\n".join(lines) + "\n").encode())
    replies = [worker.read_reply() for _ in lines]
    assert [r.get("id") for r in replies] == list(range(40)) and all(
        r.get("result") == 0.01 for r in replies), replies


# -- deadlines -----------------------------------------------------------------------------


def test_timeout_s_cancels_a_queued_and_a_running_request_and_the_daemon_serves_on(
    start_daemon: Start,
) -> None:
    daemon = start_daemon()
    peer = daemon.connect()
    holder = peer.request("debug.sleep", {"seconds": 600})
    wait_running(peer, holder)
    waiting = peer.request("debug.sleep", {"seconds": 0, "timeout_s": 0.5})
    reply = peer.reply_to(waiting, SERVED_WITHIN_S)  # while the holder still runs
    error = error_of(reply, REQUEST_CANCELLED)
    assert error["data"] == {"id": waiting, "stage": "queued"} and "timeout_s" in error["message"]
    assert (peer.result("status")["running"] or {}).get("id") == holder
    peer.cancel(holder)
    error_of(peer.reply_to(holder, SERVED_WITHIN_S), REQUEST_CANCELLED)

    started = time.monotonic()
    running = peer.request("debug.sleep", {"seconds": 600, "timeout_s": 1})
    error = error_of(peer.reply_to(running, SERVED_WITHIN_S), REQUEST_CANCELLED)
    assert error["data"] == {"id": running, "stage": "running"} and "timeout_s" in error["message"]
    assert time.monotonic() - started < SERVED_WITHIN_S
    assert peer.result("debug.sleep", {"seconds": 0.001, "timeout_s": 30}) == 0.001
    assert peer.result("status")["pid"] == daemon.pid


@pytest.mark.parametrize("value", [0, -1, "1", True, 1e9])
def test_a_bad_timeout_s_is_refused_at_once_naming_it(start_daemon: Start, value: Any) -> None:
    peer = start_daemon().connect()
    error = error_of(peer.call("debug.sleep", {"seconds": 0, "timeout_s": value}), INVALID_PARAMS)
    assert error["data"]["field"] == "timeout_s", error
    assert "seconds" in error["data"]["reason"], error  # its value is wrong, not its name


# -- a peer that stops reading -----------------------------------------------------------


def stalled_peer(path: Path, requests: int, id_bytes: int) -> socket.socket:
    """A raw connection that sends requests whose replies are big (each echoes its long id)
    and never reads one; its sends go on in a thread (they fail once it is hung up on)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))

    def send_all() -> None:
        try:
            for n in range(requests):
                message = {"jsonrpc": "2.0", "method": "debug.sleep", "params": {"seconds": 0},
                           "id": f"{n:06d}" + "x" * id_bytes}
                sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass

    threading.Thread(target=send_all, daemon=True).start()
    return sock


def hung_up(sock: socket.socket) -> bool:
    """Read what the daemon wrote before it hung up, to the end: True at EOF in time."""
    sock.settimeout(SERVED_WITHIN_S)
    try:
        while sock.recv(1 << 20):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset: hung up all the same
        pass
    return True


def test_a_session_that_stops_reading_is_dropped_and_another_is_served_throughout(
    start_daemon: Start,
) -> None:
    daemon = start_daemon("--max-outbox-bytes", str(4 << 20))
    other = daemon.connect()
    began = time.monotonic()
    stalled = stalled_peer(daemon.path, requests=64, id_bytes=1 << 20)
    try:
        while "dropped: it stopped reading" not in daemon.log_text():
            asked = time.monotonic()
            assert other.result("debug.sleep", {"seconds": 0.001},
                                timeout=SERVED_WITHIN_S) == 0.001
            assert time.monotonic() - asked < SERVED_WITHIN_S
            assert time.monotonic() - began < SEND_TIMEOUT_S, "not dropped before the send timeout"
        wait_until(lambda: other.result("status")["connections"] == 1, SERVED_WITHIN_S,
                   "the stalled session to be gone")
        assert time.monotonic() - began < SEND_TIMEOUT_S
        assert hung_up(stalled), "the stalled peer's socket is still open"
        assert other.result("debug.sleep", {"seconds": 0.001}) == 0.001
        assert other.result("status")["pid"] == daemon.pid
    finally:
        stalled.close()


# -- shutdown and other sessions' work ------------------------------------------------------


def test_shutdown_is_refused_while_another_session_works_and_force_stops_it(
    start_daemon: Start,
) -> None:
    daemon = start_daemon()
    worker, stopper = daemon.connect(), daemon.connect()
    sleeping = worker.request("debug.sleep", {"seconds": 600})
    wait_running(worker, sleeping)
    error = error_of(stopper.call("shutdown", timeout=SERVED_WITHIN_S), INVALID_PARAMS)
    assert error["data"]["field"] == "force" and "force" in error["message"], error
    assert error["data"]["running"]["method"] == "debug.sleep", error
    assert daemon.alive() and (worker.result("status")["running"] or {}).get("id") == sleeping
    assert stopper.call("shutdown", {"force": True}, timeout=SERVED_WITHIN_S)["result"] is None
    error_of(worker.reply_to(sleeping, SERVED_WITHIN_S), REQUEST_CANCELLED)
    assert daemon.wait_exit(SERVED_WITHIN_S) == 0
