"""The daemon's client side without DoWhy: where the socket lives, the switch, the start
command, stale sockets, the status table; and cancellation against the fake worker.

The real daemon is driven in tests/e2e/test_daemon.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scm_client import RequestCancelled, Worker, WorkerTimeout, __version__, _daemon
from scm_client._identity import Identity, identify
from scm_client.cli.daemon import status_table
from support import privileges
from support.procs import pid_alive

MakeFake = Callable[..., Worker]


# -- where the daemon lives ------------------------------------------------------------------


def test_runtime_dir_is_scm_daemon_dir_created_0700(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    target = tmp_path / "d"
    monkeypatch.setenv("SCM_DAEMON_DIR", str(target))
    assert _daemon.runtime_dir() == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    path = target / _daemon.socket_name(identity_of("0123456789abcdef"))
    assert path.name == f"daemon-{__version__}-0123456789abcdef.sock"
    assert _daemon.log_path(path) == target / f"daemon-{__version__}-0123456789abcdef.log"


def identity_of(key: str) -> Identity:
    return Identity("/env/bin/python", "/env", __version__, "/env/scm_worker", "0" * 64, key)


def fake_python(tmp_path: Path, answer: str) -> str:
    """A "python" that answers the identity probe with ``answer`` (and records its argv, cwd)."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho \"$PWD $*\" > {tmp_path}/argv\ncat <<'EOF'\n"
                      f"{answer}\nEOF\n")
    script.chmod(0o755)
    return str(script)


def test_the_socket_is_named_by_the_environment_key_the_worker_reports(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, socket_dir: Path) -> None:
    answer = {"python": "/e/bin/python", "prefix": "/e", "worker_version": __version__,
              "worker_path": "/e/scm_worker", "source_digest": "f" * 64,
              "environment_key": "00ff00ff00ff00ff"}
    monkeypatch.setenv("SCM_DAEMON_DIR", str(socket_dir))
    python = fake_python(tmp_path, json.dumps(answer))
    assert _daemon.socket_path(python) == socket_dir / f"daemon-{__version__}-00ff00ff00ff00ff.sock"
    assert (tmp_path / "argv").read_text().split() == ["/", "-I", "-m", "scm_worker.identity"]


@pytest.mark.parametrize("key", ["../../x", "00FF00FF00FF00FF", "0" * 17, ""])
def test_a_key_that_is_no_key_never_becomes_a_file_name(tmp_path: Path, key: str) -> None:
    answer = {"python": "p", "prefix": "/e", "worker_version": __version__, "worker_path": "w",
              "source_digest": "f" * 64, "environment_key": key}
    with pytest.raises(_daemon.WorkerStartError, match="no key"):
        identify(fake_python(tmp_path, json.dumps(answer)))


def test_an_interpreter_that_is_no_worker_cannot_be_identified(tmp_path: Path) -> None:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho 'No module named scm_worker' >&2\nexit 1\n")
    script.chmod(0o755)
    with pytest.raises(_daemon.WorkerStartError, match="is it a worker environment") as caught:
        identify(str(script))
    assert "No module named scm_worker" in str(caught.value)


def test_runtime_dir_prefers_xdg_runtime_dir_then_the_cache(monkeypatch: pytest.MonkeyPatch,
                                                            socket_dir: Path) -> None:
    monkeypatch.delenv("SCM_DAEMON_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(socket_dir / "run"))
    assert _daemon.runtime_dir() == socket_dir / "run" / "scm-worker"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(socket_dir / "cache"))
    assert _daemon.runtime_dir() == socket_dir / "cache" / "scm-worker" / "run"


@pytest.fixture
def too_long(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """SCM_DAEMON_DIR too long for a socket path; every /tmp directory made for it removed."""
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    monkeypatch.setenv("SCM_DAEMON_DIR", str(deep))
    yield deep
    record = deep / "tmp-dir"
    if record.exists():
        shutil.rmtree(record.read_text().strip(), ignore_errors=True)


def test_a_socket_path_over_107_bytes_falls_back_to_a_random_tmp_dir_found_again(
        too_long: Path) -> None:
    fallback = _daemon.runtime_dir()
    assert fallback.parent == Path("/tmp") and fallback.name.startswith("scm-worker-")
    assert fallback.name != f"scm-worker-{os.getuid()}"  # no name another user can foresee
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    assert fallback.stat().st_uid == os.getuid()
    assert (too_long / "tmp-dir").read_text().strip() == str(fallback)
    assert stat.S_IMODE((too_long / "tmp-dir").stat().st_mode) == 0o600
    assert _daemon.runtime_dir() == fallback


@pytest.mark.parametrize("spoil", ["removed", "opened", "symlinked", "given away"])
def test_a_recorded_tmp_dir_that_is_not_private_and_ours_is_replaced(too_long: Path,
                                                                     spoil: str) -> None:
    if spoil == "given away" and os.getuid() != 0:
        privileges.unprivileged("giving a directory to another user needs root")
    first = _daemon.runtime_dir()
    if spoil == "removed":
        first.rmdir()
    elif spoil == "opened":
        first.chmod(0o777)
    elif spoil == "symlinked":
        first.rmdir()
        first.symlink_to(too_long)
    else:
        os.chown(first, 65534, 65534)
    second = _daemon.runtime_dir()
    assert second != first and second.parent == Path("/tmp")
    assert (too_long / "tmp-dir").read_text().strip() == str(second)
    if first.is_symlink():
        first.unlink()
    elif first.exists():
        first.rmdir()


def test_an_open_directory_of_ours_is_made_0700(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    target = tmp_path / "open"
    target.mkdir(mode=0o755)
    target.chmod(0o777)
    monkeypatch.setenv("SCM_DAEMON_DIR", str(target))
    assert _daemon.runtime_dir() == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_a_directory_of_another_user_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    if os.getuid() == 0:  # root: hand a directory to nobody
        other = tmp_path / "nobodys"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
        owner = 65534
    else:  # a normal user: the root directory is root's
        other, owner = Path("/"), 0
    monkeypatch.setenv("SCM_DAEMON_DIR", str(other))
    with pytest.raises(_daemon.WorkerStartError, match=f"belongs to uid {owner}"):
        _daemon.runtime_dir()


@pytest.mark.parametrize(("value", "enabled"), [
    ("off", False), ("OFF", False), ("0", False), ("false", False), ("no", False),
    ("on", True), ("1", True), ("", True), ("yes", True),
])
def test_scm_daemon_switch(value: str, enabled: bool) -> None:
    assert _daemon.daemon_enabled({"SCM_DAEMON": value}) is enabled
    assert _daemon.daemon_enabled({}) is True


def test_start_command_names_every_option() -> None:
    options = _daemon.DaemonOptions(idle_timeout=30, threads=2, store="/s",
                                    worker_args=("--test-methods",))
    assert options.argv("py", Path("/r/d.sock")) == [
        "py", "-I", "-m", "scm_worker", "--listen", "/r/d.sock", "--idle-timeout", "30",
        "--threads", "2", "--store", "/s", "--test-methods"]
    assert _daemon.DaemonOptions().argv("py", Path("/r/d.sock")) == [
        "py", "-I", "-m", "scm_worker", "--listen", "/r/d.sock"]


def test_relative_paths_are_the_callers_made_absolute_when_the_options_are_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon runs from /: a relative store or log file means the caller's directory."""
    monkeypatch.chdir(tmp_path)
    options = _daemon.DaemonOptions(store="models", worker_args=("--log-file=logs/d.log",))
    monkeypatch.chdir("/")
    assert options.argv("py", Path("/r/d.sock")) == [
        "py", "-I", "-m", "scm_worker", "--listen", "/r/d.sock",
        "--store", str(tmp_path / "models"), f"--log-file={tmp_path / 'logs' / 'd.log'}"]


# -- sockets ------------------------------------------------------------------------------------


def test_no_socket_and_a_stale_socket_mean_no_daemon(socket_dir: Path) -> None:
    path = socket_dir / "d.sock"
    assert _daemon.try_connect(path) is None
    assert _daemon.status(path) is None and _daemon.stop(path=path) is None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays: what a daemon killed -9 leaves behind
    assert path.exists()
    assert _daemon.try_connect(path) is None
    assert _daemon.status(path) is None


def test_a_connection_knows_its_peer_pid(socket_dir: Path) -> None:
    path = socket_dir / "d.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        connection = _daemon.try_connect(path)
        assert connection is not None and connection.pid == os.getpid()
        connection.sock.close()
    finally:
        listener.close()


def test_a_daemon_that_fails_to_start_says_why(tmp_path: Path, socket_dir: Path) -> None:
    """A "python" that is not a worker: the start error carries what it printed."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho 'no scm_worker here' >&2\nexit 3\n")
    script.chmod(0o755)
    options = _daemon.DaemonOptions(python=str(script), start_timeout=10)
    with pytest.raises(_daemon.WorkerStartError, match=r"exited \(code 3\)") as caught:
        _daemon.start(options, socket_dir / "d.sock")
    assert "no scm_worker here" in str(caught.value)


def test_a_ready_error_line_is_the_start_error(tmp_path: Path, socket_dir: Path) -> None:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho '{\"error\": \"the lock directory is read-only\"}'\n"
                      "exit 1\n")
    script.chmod(0o755)
    options = _daemon.DaemonOptions(python=str(script), start_timeout=10)
    with pytest.raises(_daemon.WorkerStartError, match="the lock directory is read-only"):
        _daemon.start(options, socket_dir / "d.sock")


def test_pid_gone() -> None:
    assert not _daemon.pid_gone(os.getpid())
    child = os.fork()
    if child == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while not _daemon.pid_gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _daemon.pid_gone(child)  # a zombie no longer runs
    os.waitpid(child, 0)
    assert _daemon.pid_gone(child)


#: a process like a daemon: a listening socket, threads and memory to tear down at death
SOCKET_HOLDER = """
import socket, sys, threading, time
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen(8)
ballast = b"x" * 100_000_000  # touched pages: the last thread out unmaps them
for _ in range(8):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_process_is_gone_only_once_its_socket_is_closed(socket_dir: Path) -> None:
    """A SIGKILLed process's leader turns Z while its other threads still hold its files:
    "gone" must mean its socket refuses, or a reconnect reaches a daemon that never answers."""
    for attempt in range(5):  # judged by the leader's state alone, most rounds connected
        path = socket_dir / f"holder-{attempt}.sock"
        proc = subprocess.Popen([sys.executable, "-c", SOCKET_HOLDER, str(path)],
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        os.kill(proc.pid, signal.SIGKILL)
        assert _daemon.wait_gone(proc.pid, 30)
        probe = socket.socket(socket.AF_UNIX)
        try:
            with pytest.raises(ConnectionRefusedError):
                probe.connect(str(path))
        finally:
            probe.close()
            proc.wait()


# -- the status table ---------------------------------------------------------------------------


def test_status_table_shows_every_field() -> None:
    text = status_table({
        "pid": 4242, "worker_version": "0.1.0", "protocol_version": 1, "uptime_s": 61.2,
        "warm": True, "connections": 2, "requests_served": 17, "queue_length": 1,
        "running": {"method": "fit", "id": 3, "elapsed_s": 1.25},
        "models": {"in_memory": 2, "on_disk": 5}, "rss_mb": 512.4, "socket": "/r/d.sock",
        "idle_timeout_s": 1800, "threads": 2, "store_dir": "/s", "something_new": "x"})
    assert "4242" in text and "61 s" in text and "fit (id 3, 1.2 s)" in text
    assert "in memory 2, on disk 5" in text and "512 MB" in text and "1800 s" in text
    assert "something_new" in text and "/r/d.sock" in text
    assert "running" in status_table({"running": None})


# -- cancellation, against the fake ------------------------------------------------------------


def test_timeout_cancels_first_and_a_worker_that_answers_keeps_running(
    make_fake: MakeFake,
) -> None:
    worker = make_fake(FAKE_CANCELLABLE="1")
    worker.start()
    pid = worker.pid
    with pytest.raises(WorkerTimeout) as caught:
        worker.call("stall", timeout=0.3)
    assert caught.value.outcome == "cancelled" and "cancelled" in str(caught.value)
    assert worker.pid == pid and pid is not None and pid_alive(pid)
    assert worker.ping() == "pong" and worker.starts == 1


def test_timeout_kills_a_worker_that_ignores_the_cancellation(make_fake: MakeFake) -> None:
    worker = make_fake(cancel_grace=0.5)
    worker.start()
    pid = worker.pid
    assert pid is not None
    with pytest.raises(WorkerTimeout) as caught:
        worker.call("stall", timeout=0.3)
    assert caught.value.outcome == "killed" and "was killed" in str(caught.value)
    assert not pid_alive(pid)
    assert worker.ping() == "pong" and worker.starts == 2


def test_cancel_grace_zero_kills_at_once(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_CANCELLABLE="1", cancel_grace=0)
    worker.start()
    pid = worker.pid
    assert pid is not None
    with pytest.raises(WorkerTimeout) as caught:
        worker.call("stall", timeout=0.3)
    assert caught.value.outcome == "killed" and not pid_alive(pid)


def test_submit_cancel_from_another_thread_raises_request_cancelled(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_CANCELLABLE="1")
    pending = worker.submit("stall")
    assert not pending.done() and pending.request_id > 0
    assert pending.cancel()
    with pytest.raises(RequestCancelled) as caught:
        pending.result(timeout=10)
    assert caught.value.request_id == pending.request_id and caught.value.stage == "running"
    assert pending.done() and not pending.cancel()  # no longer pending
    assert worker.ping() == "pong" and worker.starts == 1


def test_submit_result_is_the_call_result(make_fake: MakeFake) -> None:
    worker = make_fake()
    pending = worker.submit("echo", {"a": 1})
    assert pending.result(timeout=10) == {"a": 1}
    assert "echo" in repr(pending)
