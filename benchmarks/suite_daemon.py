"""Suite daemon → DAEMON.md: `scm fit` with the daemon against --no-daemon, cancel latency, ping.

- Paired rounds of real `scm fit` commands on tests/fixtures/linear_chain.json: one with
  the user's daemon (started by the first, untimed command) against one with
  ``--no-daemon`` (each starts its own worker); target ≤ 0.125× (≥ 8× faster).
- Cancel latency of a running 100-node fit on the daemon's socket: the first ``fitting``
  progress with one node done says the fit is inside its node tasks, ``$/cancelRequest``
  goes out, the clock stops at the -32800 reply; the daemon's pid and loky processes must
  be the same after every cancel (target: the median ≤ 1 s, by rounds.judge).
- ``ping`` over the socket against a stdio worker's pipes, interleaved call by call (info).

The socket side is a raw line caller (standard library only): the transport's figures,
not the client's. The daemon lives in a private SCM_DAEMON_DIR and cache, and is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import datagen
from rounds import TABLE, Target, clock, fmt_s, judge, paired, row

TITLE = "The daemon: `scm` commands, cancel latency, ping over the socket"
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "linear_chain.json"


class RawCaller:
    """Newline-delimited JSON-RPC over a pair of byte streams."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer, self.ids = reader, writer, 0

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.writer.flush()

    def request(self, method: str, params: Any = None) -> int:
        self.ids += 1
        extra = {} if params is None else {"params": params}
        self.send({"method": method, "id": self.ids, **extra})
        return self.ids

    def read(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            raise EOFError("the worker closed its end")
        message: dict[str, Any] = json.loads(line)
        return message

    def reply(self, request_id: int) -> dict[str, Any]:
        while (message := self.read()).get("id") != request_id:
            pass
        return message

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.reply(self.request(method, params))
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def spawn(python: str, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen([python, "-m", "scm_worker", "--no-store", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def on_socket(python: str, path: Path) -> tuple[subprocess.Popen[bytes], RawCaller]:
    proc = spawn(python, "--listen", str(path), "--idle-timeout", "0")
    assert proc.stdout is not None
    announced = json.loads(proc.stdout.readline() or b"{}")
    if announced.get("listening") != str(path):
        raise RuntimeError(f"the daemon did not start: {announced}")
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(str(path))
    return proc, RawCaller(conn.makefile("rb"), conn.makefile("wb"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM the process group, then KILL whatever is left of it."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def children_of(pid: int) -> set[int]:
    """Direct children, from /proc/PID/task/*/children (the loky processes)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return {int(c) for task in tasks for c in (task / "children").read_text().split()}


def cancel_once(caller: RawCaller, fit: dict[str, Any], seed: int) -> float:
    """Seconds from ``$/cancelRequest`` to the -32800 of a fit inside its node tasks."""
    request_id = caller.request("fit", {**fit, "config": {"seed": seed, "cache": False}})
    while not ((note := (message := caller.read()).get("params", {})).get("stage") == "fitting"
               and note.get("done", 0) >= 1):
        if message.get("id") == request_id:
            raise RuntimeError(f"the fit ended before its cancel: {str(message)[:300]}")
    asked = time.perf_counter()
    caller.send({"method": "$/cancelRequest", "params": {"id": request_id}})
    reply = caller.reply(request_id)
    if reply.get("error", {}).get("code") != -32800:
        raise RuntimeError(f"not cancelled: {str(reply)[:300]}")
    return time.perf_counter() - asked


def raw(ctx: Any, home: Path, log: Callable[[str], None]) -> list[str]:
    daemon, sock = on_socket(ctx.python, home / "raw.sock")
    stdio = spawn(ctx.python, stdin=subprocess.PIPE)
    assert stdio.stdout is not None and stdio.stdin is not None
    pipes = RawCaller(stdio.stdout, stdio.stdin)
    try:
        sock.result("warmup", {})
        sock.result("fit", {**datagen.case_data("chain"), "config": {"seed": 0}})  # loky started
        kids = children_of(daemon.pid)
        fit = datagen.random_dag(30, 0.1, 500, 22) if ctx.quick else datagen.case_data("dag")
        latencies = [cancel_once(sock, fit, 1000 + n) for n in range(3 if ctx.quick else 12)]
        kept = sock.result("status")["pid"] == daemon.pid and children_of(daemon.pid) == kids
        pings = paired(200 if ctx.quick else 2000, {
            "stdio": lambda _i: clock(lambda: pipes.result("ping")),
            "socket": lambda _i: clock(lambda: sock.result("ping"))})
    finally:
        stop(daemon)
        stop(stdio)
    found = judge(latencies, Target(1.0))  # seconds against 1 s: the same rule as a ratio
    log(f"cancels {latencies}")
    return [f"| cancel of a running {len(fit['graph']['nodes'])}-node fit, {len(latencies)} cancels; "
            f"pid and {len(kids)} loky processes kept: {'yes' if kept else 'NO'} | — "
            f"| {fmt_s(found.median)} ({fmt_s(found.low)}–{fmt_s(found.high)}) | — "
            f"| ≤ 1 s, worker kept | {found.verdict if kept else 'missed'} |",
            row("`ping` over the daemon's socket vs a stdio worker's pipes "
                f"({len(pings['socket'])} "
                "interleaved calls each, one per round)", pings["stdio"], pings["socket"], None)]


def commands(ctx: Any, home: Path) -> list[str]:
    env = {**os.environ, "SCM_DAEMON_DIR": str(home / "run"), "XDG_CACHE_HOME": str(home / "cache"),
           "SCM_WORKER_PYTHON": ctx.python, "SCM_DAEMON": "on",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT / "client"),
                                                       os.environ.get("PYTHONPATH"))))}

    def scm(*argv: str) -> None:
        subprocess.run([sys.executable, "-m", "scm_client.cli", *argv], env=env, cwd=ROOT,
                       capture_output=True, check=True)

    try:
        scm("fit", str(FIXTURE), "--json", "-q")  # starts the daemon: untimed
        times = paired(ctx.rounds, {
            "alone": lambda i: clock(lambda: scm("fit", str(FIXTURE), "--seed", str(i), "--json",
                                                 "-q", "--no-daemon")),
            "daemon": lambda i: clock(lambda: scm("fit", str(FIXTURE), "--seed", str(i), "--json",
                                                  "-q"))})
    finally:
        subprocess.run([sys.executable, "-m", "scm_client.cli", "daemon", "stop"], env=env,
                       capture_output=True, check=False)
    return [row("`scm fit` linear_chain.json: with the daemon vs `--no-daemon` (≥ 8× faster)",
                times["alone"], times["daemon"], Target(0.125))]


def run(ctx: Any, log: Callable[[str], None]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="scmbench-", dir="/tmp") as tmp:
        return [*TABLE, *commands(ctx, Path(tmp)), *raw(ctx, Path(tmp), log)]
