"""`make test`'s runner: every tox env's suite, two at a time, each one's output whole.

Usage: test-suites.py TOX [PYTEST_ARG ...]

The suites take ~28 min one after another on this project's 2-core machine, most of it a
single pytest process waiting on one worker process: two suites side by side keep both
cores busy without oversubscribing them (two pytest processes, each driving one worker
at a time). First every env is built (one `tox run --notest`, which also installs the
editable package once); then the suites run in two slots, longest first, each through
its own `tox run -e ENV --skip-pkg-install` (so no two tox processes build the package
at once) with its output in .tox/suite-logs/ENV.log. A suite's log is printed whole,
pytest summary included, as soon as it ends; the exit status is non-zero if any failed.
`SCM_TEST_SLOTS=1` runs them one after another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Longest first, so the short ones fill the slot that frees up first (measured walls side
#: by side on a fresh clone: e2e ~15 min, reliability ~6–7, worker ~8–9, client and docs
#: under a minute).
SUITES = ("e2e", "reliability", "worker", "client", "docs")
LOGS = Path(".tox") / "suite-logs"


@dataclass
class Running:
    """One suite's tox process, its log, and when it started."""

    env: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    cpu: float = 0.0  # user + system seconds of tox, pytest and every child they waited for


def build(tox: str) -> int:
    """Build (or check) every env once, output shown: nothing runs side by side yet."""
    return subprocess.call([tox, "run", "-e", ",".join(SUITES), "--notest"])


def start(tox: str, env: str, pytest_args: list[str]) -> Running:
    """Start ENV's suite with its output (stdout and stderr) in its own log file."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{env}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([tox, "run", "-e", env, "--skip-pkg-install", "--", *pytest_args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    print(f"==> {env}: started (log: {log})", flush=True)
    return Running(env, proc, log, time.monotonic())


Result = tuple[str, int, float, float]  # env, exit status, wall and CPU seconds


def finish(done: Running) -> Result:
    """Print a finished suite's whole log under one header; its env, status, wall and CPU."""
    seconds = time.monotonic() - done.started
    status = done.proc.returncode
    print(f"\n======== {done.env}: {'ok' if status == 0 else 'FAILED'} in {seconds:.0f} s "
          f"(CPU {done.cpu:.0f} s) ========", flush=True)
    sys.stdout.buffer.write(done.log.read_bytes())
    sys.stdout.flush()
    return done.env, status, seconds, done.cpu


def run_all(tox: str, pytest_args: list[str], slots: int) -> list[Result]:
    """Run SUITES in SLOTS concurrent tox processes, a new one as soon as one ends."""
    waiting, running, results = list(SUITES), list[Running](), list[Result]()
    while waiting or running:
        while waiting and len(running) < slots:
            running.append(start(tox, waiting.pop(0), pytest_args))
        done = wait_any(running)
        running.remove(done)
        results.append(finish(done))
    return results


def wait_any(running: list[Running]) -> Running:
    """Block until one of the running suites' tox processes exits (the only children)."""
    while True:
        pid, status, usage = os.wait4(-1, 0)
        for suite in running:
            if suite.proc.pid == pid:
                suite.proc.returncode = os.waitstatus_to_exitcode(status)
                suite.cpu = usage.ru_utime + usage.ru_stime
                return suite


def main(argv: list[str]) -> int:
    tox, pytest_args = argv[0], argv[1:]
    began = time.monotonic()
    if build(tox) != 0:
        return 1
    built = time.monotonic() - began
    slots = int(os.environ.get("SCM_TEST_SLOTS", "2"))
    results = run_all(tox, pytest_args, slots)
    # benchmarks/reliability_figures.py reads the whole run's seconds from this line
    print(f"\n======== make test: {time.monotonic() - began:.0f} s wall (envs {built:.0f} s, "
          f"then the suites {slots} side by side) ========")
    for env, status, seconds, cpu in sorted(results, key=lambda r: SUITES.index(r[0])):
        verdict = "ok" if status == 0 else "FAILED"
        print(f"  {env:<12} {verdict:<7} {seconds:6.0f} s wall {cpu:6.0f} s CPU")
    return 0 if all(status == 0 for _, status, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
