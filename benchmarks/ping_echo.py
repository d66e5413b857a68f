"""``ping`` against a bare JSON echo over the same pipes, driven by the same caller.

    .venv-client/bin/python benchmarks/ping_echo.py [--worker-python PY] [--calls N] [--markdown]

Three round trips, each timed ``--calls`` times after untimed warm-up calls, all from
this process (the client interpreter):

- **echo**: a child process of the worker interpreter that reads a line, ``json.loads``
  it and writes ``{"jsonrpc": "2.0", "result": "pong", "id": ...}`` back: the floor for
  any line-delimited JSON-RPC server on these pipes (interpreter, pipes, JSON, no
  dispatch);
- **worker, raw pipe**: ``python -m scm_worker`` answering ``ping`` over the very same
  kind of pipes, with the same caller code (write one line, read one line);
- **Worker.ping**: the same call through ``scm_client.Worker`` (its reader thread and
  Future), on a worker started by the client.

The rounds are interleaved (echo, raw, client, echo, ...) so that noise on a shared
machine hits all three alike. Reported, never asserted: the targets are the worker's
raw ``ping`` within 2x of the echo and ``Worker.ping`` within 1.5x of the raw call.
Standalone: ``main()`` prints the table (``--markdown``: as rows for RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent

ECHO = r"""
import json, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    message = json.loads(line)
    out.write(json.dumps({"jsonrpc": "2.0", "result": "pong", "id": message.get("id")}).encode() + b"\n")
    out.flush()
"""


class PipeCaller:
    """One request line out, one reply line in: the same caller code for both servers."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        self._in: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        self._out: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        self._id = 0

    def ping(self) -> Any:
        self._id += 1
        self._in.write(b'{"jsonrpc": "2.0", "method": "ping", "id": %d}\n' % self._id)
        reply = json.loads(self._out.readline())
        if reply.get("id") != self._id or reply.get("result") != "pong":
            raise RuntimeError(f"unexpected reply {reply!r}")
        return reply["result"]

    def close(self) -> None:
        self._in.close()
        self.proc.wait(timeout=30)


def worker_argv(python: str) -> list[str]:
    return [python, "-m", "scm_worker", "--no-store", "--no-warmup"]


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(python: str, calls: int, warm: int = 200) -> dict[str, float]:
    """p50 (ms) of each round trip, interleaved call by call."""
    from scm_client import Worker

    env_worker = Worker(python=python, worker_args=("--no-store", "--no-warmup"))
    echo = PipeCaller([python, "-c", ECHO])
    raw = PipeCaller(worker_argv(python))
    rounds: dict[str, Callable[[], Any]] = {"echo": echo.ping, "raw": raw.ping, "client": env_worker.ping}
    try:
        env_worker.start()
        for _ in range(warm):
            for call in rounds.values():
                call()
        times: dict[str, list[float]] = {name: [] for name in rounds}
        for _ in range(calls):
            for name, call in rounds.items():
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
    finally:
        echo.close()
        raw.close()
        env_worker.close()
    return {name: p50_ms(samples) for name, samples in times.items()}


def rows(p50: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """(what, p50, ratio, target) for the table."""
    return [
        ("bare JSON echo, raw pipe", f"{p50['echo']:.3f} ms", "1.00x (floor)", ""),
        ("worker `ping`, raw pipe", f"{p50['raw']:.3f} ms", f"{p50['raw'] / p50['echo']:.2f}x the echo",
         "within 2x of the echo"),
        ("`Worker.ping` (client)", f"{p50['client']:.3f} ms", f"{p50['client'] / p50['raw']:.2f}x the raw call",
         "at most 1.5x the raw call"),
    ]


def markdown(p50: dict[str, float], calls: int) -> str:
    lines = [f"| round trip ({calls} calls, p50) | time | ratio | target |", "|---|---|---|---|"]
    lines += [f"| {what} | {time_} | {ratio} | {target} |" for what, time_, ratio, target in rows(p50)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-python", default=os.environ.get("SCM_WORKER_PYTHON")
                        or str(ROOT / ".venv-worker" / "bin" / "python"))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown rows")
    args = parser.parse_args(argv)
    p50 = measure(args.worker_python, args.calls)
    if args.markdown:
        print(markdown(p50, args.calls))
    else:
        for what, time_, ratio, target in rows(p50):
            print(f"{what:28} {time_:>10}  {ratio:24} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
