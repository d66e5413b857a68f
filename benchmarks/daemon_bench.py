"""The daemon's own figures, side by side in one run: cancel latency, and ping over socket vs stdio.

(3) Cancel latency of a running fit of the benchmark's 100-node DAG (datagen.DAG): a
fit is sent, the first ``fitting`` progress note with one node done says it is inside
its node tasks, ``$/cancelRequest`` goes out, and the clock stops at its -32800 reply.
Repeated on one daemon; its pid and its loky processes must stay the same throughout.

(4) ``ping`` round trip over the daemon's Unix socket against a stdio worker's pipes,
interleaved call by call (socket, stdio, socket, …) so machine load hits both alike.

Both are driven by the raw line caller below, standard library only: nothing of the
client package is asked, so the figures are the worker's and the transport's.

    python benchmarks/daemon_bench.py [--worker-python PY] [--cancels 12] [--pings 2000] \
        [--out benchmarks/DAEMON.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import datagen
import provenance
from machine import cpu_model, load_average

#: the issue's target for (3)
CANCEL_TARGET_S = 1.0


class RawCaller:
    """Newline-delimited JSON-RPC over a pair of byte streams; notifications are collected."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer = reader, writer
        self._ids = 0

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        self.writer.flush()

    def request(self, method: str, params: Any = None) -> int:
        self._ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": self._ids}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self._ids

    def read(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            raise EOFError("the worker closed its end")
        message: dict[str, Any] = json.loads(line)
        return message

    def reply(self, request_id: int) -> dict[str, Any]:
        while True:
            message = self.read()
            if message.get("id") == request_id:
                return message
            if "id" in message:
                raise RuntimeError(f"a reply to another request: {message}")

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.reply(self.request(method, params))
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def worker_env() -> dict[str, str]:
    """This checkout's worker first on the path, as the tests do."""
    path = os.pathsep.join([str(ROOT / "worker"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def start_daemon(python: str, path: Path) -> tuple[subprocess.Popen[bytes], RawCaller]:
    proc = subprocess.Popen(
        [python, "-m", "scm_worker", "--listen", str(path), "--no-store", "--idle-timeout", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=worker_env(), start_new_session=True,
    )
    assert proc.stdout is not None
    announced = json.loads(proc.stdout.readline() or b"{}")
    if announced.get("listening") != str(path):
        raise RuntimeError(f"the daemon did not start: {announced}")
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(str(path))
    return proc, RawCaller(conn.makefile("rb"), conn.makefile("wb"))


def start_stdio(python: str) -> tuple[subprocess.Popen[bytes], RawCaller]:
    proc = subprocess.Popen(
        [python, "-m", "scm_worker", "--no-store"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=worker_env(), start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    return proc, RawCaller(proc.stdout, proc.stdin)


def children_of(pid: int) -> set[int]:
    """Direct children, from /proc/PID/task/*/children (the loky processes)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def cancel_once(caller: RawCaller, fit: dict[str, Any], seed: int) -> float:
    """Seconds from ``$/cancelRequest`` to the -32800 of a fit that is inside its node tasks."""
    request_id = caller.request("fit", {**fit, "config": {"seed": seed, "cache": False}})
    while True:
        message = caller.read()
        if message.get("id") == request_id:
            raise RuntimeError(f"the fit ended before its cancel: {str(message)[:300]}")
        params = message.get("params", {})
        if params.get("stage") == "fitting" and params.get("done", 0) >= 1:
            break
    asked = time.perf_counter()
    caller.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
    reply = caller.reply(request_id)
    latency = time.perf_counter() - asked
    if reply.get("error", {}).get("code") != -32800:
        raise RuntimeError(f"not cancelled: {str(reply)[:300]}")
    return latency


def measure_cancels(caller: RawCaller, pid: int, count: int) -> dict[str, Any]:
    caller.result("warmup", {})
    fit = datagen.case_data("dag")
    caller.result("fit", {**datagen.case_data("chain"), "config": {"seed": 0}})  # loky started
    children = children_of(pid)
    latencies = []
    for n in range(count):
        latencies.append(cancel_once(caller, fit, seed=1000 + n))
        print(f"cancel {n + 1}/{count}: {latencies[-1] * 1000:.0f} ms", file=sys.stderr, flush=True)
    status = caller.result("status")
    return {"latencies": latencies, "pid_kept": status["pid"] == pid,
            "children_kept": children_of(pid) == children, "children": len(children)}


def measure_pings(socket_caller: RawCaller, stdio_caller: RawCaller,
                  count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"socket": [], "stdio": []}
    for caller in (socket_caller, stdio_caller):  # a few to warm both paths
        for _ in range(20):
            caller.result("ping")
    for _ in range(count):
        for name, caller in (("socket", socket_caller), ("stdio", stdio_caller)):
            started = time.perf_counter()
            caller.result("ping")
            times[name].append(time.perf_counter() - started)
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def render(cancels: dict[str, Any], pings: dict[str, list[float]], stamp: str, load: str) -> str:
    lat = cancels["latencies"]
    p50, p99 = statistics.median(lat), percentile(lat, 99)
    met = "met" if p50 <= CANCEL_TARGET_S else "MISSED"
    over = "" if p99 <= CANCEL_TARGET_S else f" (p99 {p99:.2f} s is over it)"
    sock, pipe = statistics.median(pings["socket"]), statistics.median(pings["stdio"])
    edges = len(datagen.case_data("dag")["graph"]["edges"])
    kept = {k: "unchanged" if cancels[k] else "CHANGED" for k in ("pid_kept", "children_kept")}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = (f"{stamp} Measured {when}; load average {load} at the start, {load_average()} "
              f"at the end; {cpu_model()}, {os.cpu_count()} CPUs. Command: "
              "`benchmarks/daemon_bench.py` (a raw line caller, standard library only; one "
              "daemon on a Unix socket and one stdio worker, both `--no-store`).")
    rows = [
        (f"| 3 | cancel latency of a running fit, 100-node DAG ({edges} edges, 1000 rows), "
        f"{len(lat)} cancels | p50 **{p50 * 1000:.0f} ms**, p99 {p99 * 1000:.0f} ms, "
        f"max {max(lat) * 1000:.0f} ms |"),
        (f"| 3 | the daemon's pid / its {cancels['children']} loky processes after every cancel "
        f"| {kept['pid_kept']} / {kept['children_kept']} |"),
        (f"| 4 | `ping` round trip, p50 over {len(pings['socket'])} calls each, interleaved "
        f"| socket **{sock * 1e6:.0f} µs**, stdio **{pipe * 1e6:.0f} µs** "
        f"(socket/stdio {sock / pipe:.2f}×) |"),
        (f"| 4 | `ping` p99 | socket {percentile(pings['socket'], 99) * 1e6:.0f} µs, "
        f"stdio {percentile(pings['stdio'], 99) * 1e6:.0f} µs |"),
    ]
    notes = [
        (f"- Target (cancel within {CANCEL_TARGET_S:.0f} s on the 100-node fit): p50 "
        f"{p50:.2f} s, **{met}**{over}."),
        ("- A cancel stops the fit's hand-out of node tasks and is answered at once (the compute "
        "thread looks at its cancel flag every 50 ms while it waits for a node); the tasks already "
        "in flight finish in the background and are dropped, so loky's processes stay warm."),
    ]
    title = "# The daemon: cancel latency and ping over the socket vs stdio"
    table = ["| # | measure | figure |", "|---|---|---|", *rows]
    return "\n".join([title, "", header, "", *table, "", *notes, ""])


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-python", default=os.environ.get("SCM_WORKER_PYTHON")
                        or str(ROOT / ".venv-worker" / "bin" / "python"))
    parser.add_argument("--cancels", type=int, default=12)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=HERE / "DAEMON.md")
    args = parser.parse_args(argv)
    measured, load = provenance.measured_at(), load_average()
    directory = Path(tempfile.mkdtemp(prefix="scmbench-", dir="/tmp"))
    daemon, on_socket = start_daemon(args.worker_python, directory / "run" / "d.sock")
    stdio, on_pipes = start_stdio(args.worker_python)
    try:
        cancels = measure_cancels(on_socket, daemon.pid, args.cancels)
        pings = measure_pings(on_socket, on_pipes, args.pings)
    finally:
        stop(daemon)
        stop(stdio)
        shutil.rmtree(directory, ignore_errors=True)
    text = render(cancels, pings, provenance.stamp(measured), load)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
