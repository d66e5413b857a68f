"""The daemon's /tmp fallback directory against another user who got there first.

The victim is a user of its own (a fresh uid no account or process has, through
``setpriv``), so the predictable name the old code used, ``/tmp/scm-worker-<uid>``,
belongs to this test alone; the other user is ``nobody``. The victim's client runs the
real daemon with a ``SCM_DAEMON_DIR`` too long for a socket path, which is what sends it
to /tmp. Needs root (to change uid) and setpriv, as the worker suite's other-uid tests.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import privileges
from support.daemons import short_dir
from support.procs import cmdline, wait_until

needs_root = privileges.needs_root("becoming another uid needs root and setpriv")

#: read and search anywhere (the interpreters may live under root's 0700 home), nothing else
READ_SEARCH = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

#: the victim's client: start (or reach) its daemon, say where it serves, stop it
CLIENT = """
import json
from scm_client import Worker, _daemon
worker = Worker.connect(worker_args=["--test-methods", "--no-warmup", "--no-store"],
                        idle_timeout=120)
assert worker.ping() == "pong"
print(json.dumps({"socket": worker.info["socket"], "pid": worker.pid}))
worker.close()
_daemon.stop(grace=10)
"""


@dataclass
class Victim:
    uid: int
    home: Path

    def run_client(self) -> dict[str, object]:
        """The client as this user; its answer (the test fails with its stderr otherwise)."""
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home),
               "XDG_CACHE_HOME": str(self.home / "cache"),
               "SCM_DAEMON_DIR": str(self.home / ("d" * 60) / ("r" * 60)),
               "SCM_WORKER_PYTHON": os.environ["SCM_WORKER_PYTHON"]}
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                *READ_SEARCH, sys.executable, "-c", CLIENT]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(self.home),
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout))


def unused_uid() -> int:
    """A uid with no account and no process: nobody else's files or daemons can have it."""
    running = {os.stat(f"/proc/{entry}").st_uid for entry in os.listdir("/proc") if entry.isdigit()}
    while True:
        uid = random.randrange(200_000, 900_000)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if uid not in running:
                return uid


@pytest.fixture
def victim() -> Iterator[Victim]:
    uid = unused_uid()
    home = short_dir("scmv-")
    os.chown(home, uid, uid)
    yield Victim(uid, home)
    for pid in daemons_of(uid):
        os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not daemons_of(uid), 30, f"no daemon of uid {uid} left")
    for path in [home, *Path("/tmp").glob(f"scm-worker-{uid}*")]:
        shutil.rmtree(path, ignore_errors=True)


def daemons_of(uid: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()
            and "--listen" in cmdline(int(entry)) and owner(Path("/proc", entry)) == uid]


def owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


def plant(path: Path) -> None:
    """``nobody`` makes ``path`` a directory open to all (as it could in /tmp)."""
    subprocess.run([*AS_NOBODY, "mkdir", "-m", "0777", str(path)], check=True, timeout=30)
    assert owner(path) == pwd.getpwnam("nobody").pw_uid


def assert_private_to(directory: Path, uid: int) -> None:
    info = directory.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == uid, (directory, info)
    assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)


@needs_root
def test_a_directory_another_user_made_at_the_old_fallback_name_is_not_used(
    victim: Victim,
) -> None:
    planted = Path(f"/tmp/scm-worker-{victim.uid}")
    plant(planted)
    served = victim.run_client()
    directory = Path(str(served["socket"])).parent
    assert directory != planted and directory.parent == Path("/tmp")
    assert_private_to(directory, victim.uid)
    assert os.listdir(planted) == []
    assert victim.run_client()["socket"] == served["socket"]  # found again, not another one


@needs_root
def test_a_recorded_directory_that_another_user_remade_is_replaced(victim: Victim) -> None:
    """/tmp was cleaned (a reboot) and ``nobody`` made a directory of the recorded name."""
    first = Path(str(victim.run_client()["socket"])).parent
    shutil.rmtree(first)
    plant(first)
    second = Path(str(victim.run_client()["socket"])).parent
    assert second != first and second.parent == Path("/tmp")
    assert_private_to(second, victim.uid)
    assert os.listdir(first) == []
