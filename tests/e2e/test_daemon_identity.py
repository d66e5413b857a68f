"""A daemon's identity is its environment: real daemons of two worker environments.

The second environment is a real one (its own ``sys.prefix``), made in seconds by
``support.worker_env.second_environment``: a venv reusing the worker env's packages,
optionally with its own copy of ``scm_worker`` (an editable checkout a test may edit).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import Worker, _daemon
from support.daemons import listening_pids
from support.procs import pid_alive, wait_until
from support.worker_env import ONE_THREAD, second_environment

ROOT = Path(__file__).resolve().parents[2]
DAEMON_ARGS = ("--test-methods", "--no-warmup", "--no-store", *ONE_THREAD)

Connect = Callable[..., Worker]


@pytest.fixture
def connect(daemon_dir: Path) -> Iterator[Connect]:
    """``connect(python)``: a Worker on that environment's daemon; all closed after the test."""
    made: list[Worker] = []

    def make(python: str | Path) -> Worker:
        worker = Worker.connect(str(python), worker_args=DAEMON_ARGS, idle_timeout=300)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def run_scm(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scm_client.cli", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)


def status_of(worker: Worker) -> dict[str, Any]:
    status = worker.call("status")
    assert isinstance(status, dict)
    return status


def test_two_worker_environments_get_two_daemons_and_status_names_each(
    connect: Connect, worker_python: str, daemon_dir: Path, tmp_path: Path,
) -> None:
    other = second_environment(worker_python, tmp_path / "other-env")
    first, second = connect(worker_python), connect(other)
    assert first.ping() == "pong" and second.ping() == "pong"
    assert first.pid != second.pid, "two environments were served by one daemon"
    assert first.info["socket"] != second.info["socket"]
    assert len(listening_pids(daemon_dir)) == 2
    mine, theirs = status_of(first), status_of(second)
    assert mine["python"] == worker_python and theirs["python"] == str(other)
    assert Path(theirs["prefix"]) == tmp_path / "other-env"
    assert Path(mine["prefix"]) == Path(worker_python).parent.parent
    for status in (mine, theirs):
        assert Path(status["worker_path"]) == ROOT / "worker" / "scm_worker"
        assert status["stale"] is False and len(status["source_digest"]) == 64
    shown = run_scm("daemon", "status", "--python", other)
    assert shown.returncode == 0, shown.stderr
    assert str(second.pid) in shown.stdout and str(tmp_path / "other-env") in shown.stdout
    assert f"pid {first.pid}" in shown.stdout  # the other daemon is named too, in one line


def test_an_edited_worker_source_gets_a_fresh_daemon_and_the_old_one_says_stale(
    connect: Connect, worker_python: str, daemon_dir: Path, tmp_path: Path,
) -> None:
    checkout = tmp_path / "checkout"
    python = second_environment(worker_python, tmp_path / "env", source=checkout)
    before = connect(python)
    assert before.call("ping") == "pong"
    methods = checkout / "scm_worker" / "api" / "methods.py"
    methods.write_text(methods.read_text().replace('return "pong"', 'return "pong, edited"'))
    after = connect(python)
    assert after.call("ping") == "pong, edited", "the edited source did not run"
    assert after.pid != before.pid
    assert status_of(before)["worker_path"] == str(checkout / "scm_worker")
    assert status_of(before)["stale"] is True  # it still serves the code it started with
    assert status_of(after)["stale"] is False
    assert status_of(after)["source_digest"] != status_of(before)["source_digest"]
    shown = run_scm("daemon", "status", "--python", python)
    assert shown.returncode == 0, shown.stderr
    assert str(after.pid) in shown.stdout
    assert f"pid {before.pid}" in shown.stdout and "stale" in shown.stdout
    old_pid = before.pid
    assert old_pid is not None
    before.close()
    stopped = run_scm("daemon", "stop", "--all", "--python", python)
    assert stopped.returncode == 0, stopped.stderr
    assert f"pid {old_pid}" in stopped.stdout and f"pid {after.pid}" in stopped.stdout
    wait_until(lambda: not pid_alive(old_pid), 30, "the stale daemon stopped")
    assert listening_pids(daemon_dir) == []
