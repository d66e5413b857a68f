"""The daemon soak's guard faults: one peer floods connections, another floods its queue.

Each is the fault issue 31 guards against, thrown at a daemon that three soak clients are
using: the flood must be refused (-32004, as docs/PROTOCOL.md says) while the clients go
on being served by the same daemon process. Each returns what it saw, for the report.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from pathlib import Path
from typing import Any

from support.daemon import SocketPeer
from support.procs import wait_until

LIMIT_EXCEEDED = -32004
REQUEST_CANCELLED = -32800
#: the daemon's defaults (docs/PROTOCOL.md): connections, and requests queued per session
MAX_CONNECTIONS = 64
MAX_QUEUED_REQUESTS = 256
#: connection attempts of one flood: well past the cap, bounded in count and time
FLOOD_ATTEMPTS = 200
FLOOD_BUDGET_S = 60.0
#: a blocking Unix-socket connect waits this long for room in a full backlog, then fails
BACKLOG_WAIT = struct.pack("ll", 0, 50_000)


def connection_flood(path: Path) -> dict[str, Any]:
    """Hold ``FLOOD_ATTEMPTS`` connections to the daemon at once, read the refusals of those
    past its cap, then close them all. At least one must be refused."""
    held: list[socket.socket] = []
    failed = 0
    try:
        for _ in range(FLOOD_ATTEMPTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, BACKLOG_WAIT)
            try:
                sock.connect(str(path))
                held.append(sock)
            except OSError:  # the backlog was full: the attempt never reached the daemon
                failed += 1
                sock.close()
        refused = _refusals(held, len(held) - MAX_CONNECTIONS)
    finally:
        for sock in held:
            sock.close()
    assert refused >= 1, f"no connection of {len(held)} held was refused by the cap"
    return {"kind": "connection flood", "attempts": FLOOD_ATTEMPTS, "held": len(held),
            "backlog_full": failed, "refused": refused}


def _refusals(held: list[socket.socket], expected: int) -> int:
    """Refusal lines read from ``held`` until ``expected`` came (or the budget ran out):
    each a -32004 ``max_connections`` line, then the daemon's close."""
    pending = {sock.fileno(): sock for sock in held}
    refused = 0
    deadline = time.monotonic() + FLOOD_BUDGET_S
    while pending and refused < expected and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending), [], [], 0.5)
        for fd in ready:
            line = pending.pop(fd).makefile("rb").readline()
            if line:
                error = json.loads(line)["error"]
                assert error["code"] == LIMIT_EXCEEDED, error
                assert error["data"]["limit"] == "max_connections", error
                refused += 1
    return refused


def queue_flood(path: Path) -> dict[str, Any]:
    """One session fills its queue behind a sleep of its own, then sends a few requests
    past the cap: those are refused at once. Its queued requests and its sleep are then
    cancelled (a fair queue would otherwise give every other session a turn per queued
    request, and the soak's clients would finish during the flood)."""
    peer = SocketPeer(path, timeout=30.0)
    try:
        sleeper = peer.request("debug.sleep", {"seconds": 600, "timeout_s": 300})
        wait_until(lambda: (peer.result("status")["running"] or {}).get("id") == sleeper,
                   300, "the flooding session's sleep to run")
        extra = 8
        ids = [peer.request("debug.sleep", {"seconds": 0}) for _ in range(MAX_QUEUED_REQUESTS + extra)]
        replies = [peer.read_json(timeout=120) for _ in range(extra)]  # the refusals come first
        for request_id in [*ids[:MAX_QUEUED_REQUESTS], sleeper]:  # the sleep last: none may run
            peer.cancel(request_id)
        replies += [peer.read_json(timeout=300) for _ in range(MAX_QUEUED_REQUESTS + 1)]
    finally:
        peer.close()
    codes = {r["id"]: r["error"]["code"] if "error" in r else None for r in replies}
    refused = [i for i in ids if codes.get(i) == LIMIT_EXCEEDED]
    assert refused == ids[MAX_QUEUED_REQUESTS:], f"refused {len(refused)}, not the last {extra}"
    assert all(codes.get(i) == REQUEST_CANCELLED for i in [*ids[:MAX_QUEUED_REQUESTS], sleeper]), \
        "a queued request or the sleep was not cancelled"
    return {"kind": "queue flood", "sent": len(ids) + 1, "refused": len(refused),
            "queued": MAX_QUEUED_REQUESTS}
