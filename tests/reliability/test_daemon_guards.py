"""The daemon trusts nothing it finds: a pid in its lock file.

Real daemons (``python -m scm_worker --listen PATH`` from the worker env) over real Unix
sockets, real processes to kill or to spare:

- the lock file names the daemon that held it; the next daemon signals only processes
  proven to be that dead daemon's children, so a recycled pid (a ``setsid sleep`` the
  test starts, standing for tmux or ssh-agent) survives, while the joblib orphans of a
  SIGKILLed daemon are still reaped; a clean exit clears the record;
- under ``prlimit --nofile=256`` a flood of 1,000 connection attempts is refused beyond
  ``--max-connections`` (-32004) or, with the cap above what the fds allow, met with
  accept's EMFILE, which the daemon backs off from: a well-behaved client is served
  throughout, by the same pid;
- a daemon whose socket path was removed, replaced, or whose whole directory went, exits.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.daemon import DaemonProcess, remove_tree, short_dir
from support.procs import cmdline, group_members, pid_alive, wait_until
from support.worker_env import worker_python

LIMIT_EXCEEDED = -32004
FLOOD = 1_000
#: the flood's whole budget, seconds: each attempt waits at most 50 ms for room in the backlog
FLOOD_BUDGET_S = 120.0

Start = Callable[..., DaemonProcess]


@pytest.fixture
def start_daemon() -> Iterator[Start]:
    """``start_daemon(*flags, path=None, prefix=None, wait=True)``: daemons of the worker env in
    a short private directory (``start_daemon.directory``), every one stopped after the test."""
    directory = short_dir()
    started: list[DaemonProcess] = []

    def start(*flags: str, path: Path | None = None, wait: bool = True, **kwargs: Any) -> DaemonProcess:
        daemon = DaemonProcess(path or directory / "run" / "d.sock", *flags, python=worker_python(), **kwargs)
        started.append(daemon)
        return daemon.ready() if wait else daemon

    start.directory = directory  # type: ignore[attr-defined]
    yield start
    for daemon in started:
        daemon.stop()
    remove_tree(directory)


def start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


# -- the lock file's pid ----------------------------------------------------------------------


@pytest.fixture
def session_leader() -> Iterator[int]:
    """An unrelated orphaned session leader of ours: ``setsid --fork sleep 300`` (parent 1, its
    own process group): what a recycled pid in the lock file may name (tmux, ssh-agent)."""
    starter = subprocess.run(["setsid", "--fork", "sh", "-c", "echo $$; exec sleep 300 >/dev/null 2>&1"],
                             capture_output=True, text=True, timeout=30, check=True)
    pid = int(starter.stdout.split()[0])
    wait_until(lambda: cmdline(pid) == "sleep 300", 10, "the session leader to exec sleep")
    yield pid
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def lock_file(daemon_path: Path) -> Path:
    return daemon_path.with_name(daemon_path.name + ".lock")


def old_record(pid: int, form: str) -> str:
    """A record an earlier daemon left naming ``pid``: the bare pid an older worker wrote, or
    the full record of a daemon that ran at that pid before it was recycled (an earlier start)."""
    if form == "bare":
        return str(pid)
    return json.dumps({"pid": pid, "start": start_time(pid) - 1000, "token": secrets.token_hex(16),
                       "cmdline": [worker_python(), "-m", "scm_worker", "--listen", "/tmp/x/d.sock"]})


@pytest.mark.parametrize("form", ["bare", "recorded"])
def test_a_recycled_pid_in_the_lock_file_survives_a_daemon_start(
    start_daemon: Start, session_leader: int, form: str,
) -> None:
    # Was a gap: a daemon start SIGKILLed every process of ours in the recorded pid's group whose
    # parent was 1, so a pid reused by an unrelated session leader was killed.
    path = start_daemon.directory / "run" / "d.sock"  # type: ignore[attr-defined]
    path.parent.mkdir(mode=0o700)
    lock_file(path).write_text(old_record(session_leader, form))
    assert group_members(session_leader) == [session_leader]
    daemon = start_daemon(path=path)
    assert daemon.connect().result("ping") == "pong"  # its lock was taken (and its record read) before
    assert pid_alive(session_leader) and cmdline(session_leader) == "sleep 300", daemon.log_text()[-2000:]
    assert "a killed daemon" not in daemon.log_text()
    if form == "recorded":
        assert f"(pid {session_leader}) is gone and its pid now names another process" in daemon.log_text()


def test_a_clean_exit_clears_the_lock_record(start_daemon: Start) -> None:
    daemon = start_daemon()
    record = json.loads(lock_file(daemon.path).read_text())
    assert record["pid"] == daemon.pid and record["start"] == start_time(daemon.pid)
    assert record["cmdline"] == daemon.argv
    os.kill(daemon.pid, signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert lock_file(daemon.path).read_text() == ""


def test_the_joblib_orphans_of_a_killed_daemon_are_reaped_by_the_next(start_daemon: Start) -> None:
    daemon = start_daemon("--warmup")
    assert daemon.connect().result("warmup", {}, timeout=300)["warm"] is True
    children = [pid for pid in group_members(daemon.pid) if pid != daemon.pid]
    assert children, "a warm daemon has joblib processes in its group"
    os.kill(daemon.pid, signal.SIGKILL)  # the daemon only: its children are orphaned
    daemon.wait_exit()
    orphans = [pid for pid in children if pid_alive(pid)]
    assert orphans, "the orphans exited by themselves: nothing left to reap"
    again = start_daemon(path=daemon.path)
    wait_until(lambda: not any(pid_alive(pid) for pid in orphans), 30, f"the orphans {orphans} to be reaped")
    assert f"a killed daemon (pid {daemon.pid}) left" in again.log_text()
    assert again.connect().result("ping") == "pong"
