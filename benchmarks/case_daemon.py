"""Case 7: the user's daemon, measured through real `scm` commands and real client processes.

(a) Ten consecutive `scm fit` commands on a fixture with the daemon (the first one
starts it) against ten with `--no-daemon` (each starts its own worker), interleaved.
(b) Two client processes sharing the daemon, fits and samples interleaved, against one
process sending the same requests: every reply must be the one a lone process gets.
(c) Cancel latency of a running 100-node fit and ping over the socket vs stdio, by
daemon_bench.py's raw caller (its own DAEMON.md is the same measure, run alone).
The daemon lives in a private SCM_DAEMON_DIR and cache directory and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import daemon_bench
from common import BENCH, ROOT, Row, fmt_s, fmt_x, median, progress, timed
from scm_client import _daemon

if TYPE_CHECKING:
    from bench import Bench

FIXTURE = ROOT / "tests" / "fixtures" / "linear_chain.json"
SHARED_REQUESTS = 12  # per process


def daemon(bench: Bench) -> None:
    env = _environment(bench)
    try:
        commands(bench, env)
        shared(bench, env)
    finally:
        _scm(env, "daemon", "stop", check=False)
    raw_caller(bench)


def raw_caller(bench: Bench) -> None:
    """(c): cancel latency (pid and loky processes kept) and ping, socket vs stdio."""
    count = bench.args.daemon_cancels
    bench.case("7", f"case 7c: {count} cancels of a running 100-node fit; ping socket vs stdio")
    daemon, on_socket = daemon_bench.start_daemon(bench.python, bench.tmp / "raw" / "d.sock")
    stdio, on_pipes = daemon_bench.start_stdio(bench.python)
    try:
        cancels = daemon_bench.measure_cancels(on_socket, daemon.pid, count)
        pings = daemon_bench.measure_pings(on_socket, on_pipes, bench.args.pings)
    finally:
        daemon_bench.stop(daemon)
        daemon_bench.stop(stdio)
    lat = cancels["latencies"]
    p50, p99 = median(lat), daemon_bench.percentile(lat, 99)
    kept = cancels["pid_kept"] and cancels["children_kept"]
    bench.details["daemon_cancels"] = cancels
    bench.results.add(Row(
        "7 daemon", f"cancel latency of a running 100-node fit, p50 (p99 {fmt_s(p99)}, {count} "
        f"cancels; pid and {cancels['children']} loky processes kept: {'yes' if kept else 'NO'})",
        "—", fmt_s(p50), "—", "≤ 1 s, worker kept", p50 <= 1.0 and kept, p50, 1.0, "lower", "s"))
    socket_p50, stdio_p50 = median(pings["socket"]), median(pings["stdio"])
    bench.results.add(Row(
        "7 daemon", f"ping p50 over the daemon's socket vs a stdio worker ({len(pings['socket'])} "
        "calls each, interleaved)", f"{stdio_p50 * 1000:.3f} ms (stdio)",
        f"{socket_p50 * 1000:.3f} ms",
        fmt_x(socket_p50 / stdio_p50), "report", None))


def _environment(bench: Bench) -> dict[str, str]:
    home = bench.tmp / "daemon"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "SCM_DAEMON_DIR": str(home / "run"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "SCM_WORKER_PYTHON": bench.python,
        "SCM_DAEMON": "on",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "client"),
                                                  os.environ.get("PYTHONPATH")) if p),
    }


def _scm(env: dict[str, str], *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scm_client.cli", *argv], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=check)


def commands(bench: Bench, env: dict[str, str]) -> None:
    """(a): per-command wall time of `scm fit`, daemon vs --no-daemon, seeds shared."""
    runs = bench.args.daemon_commands
    bench.case("7", f"case 7a: {runs} `scm fit` commands with the daemon vs {runs} with --no-daemon")
    with_daemon: list[float] = []
    without: list[float] = []
    for seed in range(runs):
        for flags, times in (((), with_daemon), (("--no-daemon",), without)):
            seconds, _ = timed(lambda f=flags: _scm(env, "fit", str(FIXTURE), "--seed", str(seed),
                                                     "--json", "-q", *f))
            times.append(seconds)
    sockets = sorted(Path(env["SCM_DAEMON_DIR"]).glob(_daemon.SOCKET_GLOB))  # the one daemon
    status = (_daemon.status(path=sockets[0]) if sockets else None) or {}
    warm = median(with_daemon[1:])
    ratio = median(without) / warm
    bench.details["daemon_commands"] = {"with_daemon_s": with_daemon, "no_daemon_s": without,
                                        "daemon_requests_served": status.get("requests_served")}
    bench.results.add(Row(
        "7 daemon",
        f"`scm fit` {FIXTURE.name}, median of {runs - 1} commands after the first "
        f"(the first, which started the daemon: {fmt_s(with_daemon[0])})",
        f"{fmt_s(median(without))} (--no-daemon)", fmt_s(warm), fmt_x(ratio) + " faster",
        "≥ 8× faster", ratio >= 8, ratio, 8, "higher", "×"))
    progress(f"  scm fit: daemon {fmt_s(warm)} vs --no-daemon {fmt_s(median(without))}")


def shared(bench: Bench, env: dict[str, str]) -> None:
    """(b): two processes on one daemon against one process sending both request lists."""
    bench.case("7", "case 7b: two client processes sharing the daemon vs one process")
    model = _fit_model(env)
    lone = _clients(env, model, [(0, 2 * SHARED_REQUESTS)])[0]
    pair = _clients(env, model, [(0, SHARED_REQUESTS), (SHARED_REQUESTS, SHARED_REQUESTS)])
    together = {k: v for result in pair for k, v in result["digests"].items()}
    same = together == lone["digests"]
    pair_wall = max(result["wall_s"] for result in pair)
    ratio = lone["wall_s"] / pair_wall
    bench.details["daemon_shared"] = {"one_process_s": lone["wall_s"],
                                      "two_processes_s": [r["wall_s"] for r in pair],
                                      "replies_equal": same}
    bench.results.add(Row(
        "7 daemon",
        f"throughput, 2 client processes × {SHARED_REQUESTS} fits and samples on one daemon "
        f"(every reply equal to a lone process's: {'yes' if same else 'NO'})",
        f"{fmt_s(lone['wall_s'])} (1 process, {2 * SHARED_REQUESTS} requests)",
        fmt_s(pair_wall), fmt_x(ratio), "replies correct; throughput reported", same, ratio))


def _fit_model(env: dict[str, str]) -> str:
    out = _scm(env, "fit", str(FIXTURE), "--seed", "0", "--json", "-q").stdout
    return str(json.loads(out)["model_id"])


def _clients(env: dict[str, str], model: str, spans: list[tuple[int, int]]) -> list[Any]:
    """Run one daemon_client.py process per (first, count) span at once; their results."""
    procs = [subprocess.Popen([sys.executable, str(BENCH / "daemon_client.py"), "--first",
                               str(first), "--count", str(count), "--model", model],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for first, count in spans]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"daemon_client.py exited {proc.returncode}")
        results.append(json.loads(out))
    for result in results:
        result["digests"] = {int(k): v for k, v in result["digests"].items()}
    return results
