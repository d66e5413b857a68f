"""Daemons in tests: a private socket directory per test, and nothing left running after it.

Every 3.13 suite runs with ``SCM_DAEMON=off`` and ``SCM_DAEMON_DIR`` pointing at a
session directory of its own (``no_daemon_by_default``), so no test reaches the user's
real daemon or shares one with another test by accident. A test that wants the daemon
takes ``daemon_dir``: a fresh short directory (Unix socket paths are limited to 107
bytes), the switch back on, and at teardown every daemon listening there stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from scm_client import _daemon

from support.cli import scm
from support.procs import cmdline, wait_until
from support.worker_env import ONE_THREAD


def short_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def listening_pids(directory: Path) -> list[int]:
    """Live processes whose command line says ``--listen`` into ``directory``."""
    needle = f"--listen {directory}/"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and needle in cmdline(int(entry)) and not _daemon.pid_gone(int(entry)):
            found.append(int(entry))
    return sorted(found)


def stop_daemons(directory: Path) -> None:
    """Stop every daemon of ``directory`` gracefully, then kill any left there."""
    for socket in sorted(directory.glob(_daemon.SOCKET_GLOB)):
        _daemon.stop(grace=5.0, path=socket)
    for pid in listening_pids(directory):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    wait_until(lambda: not listening_pids(directory), 15, f"no daemon left in {directory}")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short empty directory for a socket (no daemon switched on), removed after the test."""
    directory = short_dir("scmd-unit-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def no_daemon_by_default() -> Iterator[Path]:
    directory = short_dir("scmd-session-")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_daemon.SWITCH_ENV, "off")
        patch.setenv(_daemon.DIR_ENV, str(directory))
        yield directory
    stop_daemons(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def daemon_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh socket directory with the daemon switched on; its daemons stopped after."""
    directory = short_dir("scmd-")
    monkeypatch.setenv(_daemon.DIR_ENV, str(directory))
    monkeypatch.delenv(_daemon.SWITCH_ENV, raising=False)
    yield directory
    stop_daemons(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def cli_daemon() -> Iterator[Path]:
    """One warm daemon for a module's ``scm`` runs, as a user's shell has: switched on, in a
    short directory of its own, with its own empty store; stopped after the module.

    A CLI test about a command's output does not need a fresh worker per ``scm`` run: the
    daemon is the CLI's default path, and without it every run pays DoWhy's imports again
    (seconds each). One thread: two xdist processes share the two cores (FAST_ARGS). Tests
    of the no-daemon path set ``SCM_DAEMON=off`` or pass ``--no-daemon`` themselves.
    """
    directory = short_dir("scmd-cli-")
    store = short_dir("scm-cli-store-")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(_daemon.SWITCH_ENV, raising=False)
        patch.setenv(_daemon.DIR_ENV, str(directory))
        started = scm("daemon", "start", *ONE_THREAD, "--idle-timeout", "0", "--store", str(store))
        assert started.returncode == 0 and "daemon started" in started.stdout, started.stderr
        try:
            yield directory
        finally:
            stop_daemons(directory)
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(store, ignore_errors=True)
