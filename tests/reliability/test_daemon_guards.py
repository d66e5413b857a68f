"""The daemon trusts nothing it finds: a pid in its lock file, a flood of peers, a lost socket.

Real daemons (``python -m scm_worker --listen PATH`` from the worker env) over real Unix
sockets, real processes to kill or to spare:

- the lock file names the daemon that held it; the next daemon signals only processes
  proven to be that dead daemon's children, so a recycled pid (a ``setsid sleep`` the
  test starts, standing for tmux or ssh-agent) survives, while the joblib orphans of a
  SIGKILLed daemon are still reaped; a clean exit clears the record;
- under ``prlimit --nofile=256`` a flood of 1,000 connection attempts is refused beyond
  ``--max-connections`` (-32004; a cap above what the descriptors allow is lowered to
  fit) or, with the limit lowered under the running daemon, met with accept's EMFILE,
  which the daemon backs off from: a well-behaved client is served throughout, by the
  same pid; a session thread the kernel will not start (a pids cgroup at its limit)
  refuses that connection alone;
- a daemon whose socket path was removed, replaced, or whose whole directory went, exits.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.daemon import DaemonProcess, SocketPeer, Start
from support.procs import cmdline, group_members, pid_alive, wait_until
from support.worker_env import JOBLIB_THREADS, worker_python

LIMIT_EXCEEDED = -32004
INTERNAL_ERROR = -32603
FLOOD = 1_000
#: the flood's whole budget, seconds: each attempt waits at most 50 ms for room in the backlog
FLOOD_BUDGET_S = 120.0




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
    daemon = start_daemon("--warmup", *JOBLIB_THREADS)
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


# -- a flood of connections -------------------------------------------------------------------


class Flood:
    """Up to ``FLOOD`` connection attempts, each held open, within ``FLOOD_BUDGET_S``."""

    #: a blocking Unix-socket connect waits this long for room in a full backlog, then fails
    BACKLOG_WAIT = struct.pack("ll", 0, 50_000)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held: list[socket.socket] = []
        self.failed = 0

    def attempt(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self.BACKLOG_WAIT)
        try:
            sock.connect(str(self.path))
        except OSError:
            self.failed += 1
            sock.close()
            return
        self.held.append(sock)

    def refusals(self, limit: str, maximum: int) -> int:
        """How many held connections got one -32004 line for ``limit`` and were then closed."""
        count = 0
        for sock in self.held:
            sock.settimeout(0.2)
            try:
                line = sock.makefile("rb").readline()
            except OSError:
                continue  # nothing said: an accepted connection, or one never accepted
            if line:
                error = json.loads(line)["error"]
                assert error["code"] == LIMIT_EXCEEDED, error
                assert error["data"] == {"limit": limit, "value": maximum + 1, "max": maximum}, error
                count += 1
        return count

    def close(self) -> None:
        for sock in self.held:
            sock.close()
        self.held.clear()


@pytest.fixture
def flood_of() -> Iterator[Callable[[Path], Flood]]:
    """Floods of this test, closed after it; the test process may hold every connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD + 256 if hard == resource.RLIM_INFINITY else min(hard, FLOOD + 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    made: list[Flood] = []

    def make(path: Path) -> Flood:
        made.append(Flood(path))
        return made[-1]

    yield make
    for flood in made:
        flood.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect_when_accepted(daemon: DaemonProcess) -> SocketPeer:
    """A new connection once the daemon accepts again (the flood's backlog drains first)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return daemon.connect()
        except (BlockingIOError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def flood_while_serving(daemon: DaemonProcess, flood: Flood, client: SocketPeer) -> int:
    """Make the flood's attempts, the client pinging every 50; how many pings it got."""
    deadline = time.monotonic() + FLOOD_BUDGET_S
    pongs = 0
    for attempt in range(FLOOD):
        if time.monotonic() > deadline:
            break
        flood.attempt()
        if attempt % 50 == 0:
            assert client.result("ping") == "pong", f"attempt {attempt}"
            pongs += 1
    assert daemon.alive(), daemon.log_text()[-3000:]
    return pongs


@pytest.mark.parametrize("case", ["default_cap", "cap_above_the_fd_limit", "fd_limit_lowered_under_it"])
def test_a_flood_of_connections_under_ulimit_256_leaves_a_client_served_by_the_same_pid(
    start_daemon: Start, flood_of: Callable[[Path], Flood], case: str,
) -> None:
    # Was a gap: with no cap, 311 connections made accept fail with EMFILE, which the daemon
    # re-raised: it stopped accepting for good and removed its socket.
    flags = () if case == "default_cap" else ("--max-connections", "2000")
    daemon = start_daemon(*flags, prefix=["prlimit", "--nofile=256:256", "--"])
    client = daemon.connect()
    assert client.result("ping") == "pong"
    if case == "fd_limit_lowered_under_it":  # the daemon's cap (192) no longer fits: accept meets EMFILE
        subprocess.run(["prlimit", f"--pid={daemon.pid}", "--nofile=128:128"], check=True, timeout=30)
    flood = flood_of(daemon.path)
    pongs = flood_while_serving(daemon, flood, client)
    attempts = len(flood.held) + flood.failed
    print(f"{case}: {attempts} attempts, {len(flood.held)} connected, {flood.failed} found the backlog "
          f"full, {pongs} pings served during the flood")
    assert attempts == FLOOD
    if case == "fd_limit_lowered_under_it":
        wait_until(lambda: "Too many open files" in daemon.log_text(), 30, "the EMFILE back-off in the log")
    else:
        cap = 64 if case == "default_cap" else 256 - 64
        refused = flood.refusals("max_connections", cap)
        assert refused >= len(flood.held) - cap and refused > FLOOD // 4, refused
        assert f"max {cap}" in daemon.log_text()
        assert client.result("status")["pid"] == daemon.pid
    flood.close()
    late = connect_when_accepted(daemon)  # the flood gone, a new client is accepted again
    assert late.result("ping") == "pong" and late.result("status")["pid"] == daemon.pid
    assert client.result("ping") == "pong" and daemon.alive()
    if case == "fd_limit_lowered_under_it":
        assert "accepting again after" in daemon.log_text()


def make_pids_cgroup() -> Path | None:
    """A new cgroup with a ``pids.max`` (cgroup v1's pids hierarchy, or v2's), or None."""
    name = f"scm-test-{os.getpid()}-{secrets.token_hex(4)}"
    for root in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        group = root / name
        try:
            group.mkdir()
        except OSError:
            continue
        if (group / "pids.max").exists():
            return group
        group.rmdir()
    return None


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    """A pids cgroup for the test's daemon; whatever is left in it goes back to the parent."""
    group = make_pids_cgroup()
    if group is None:
        pytest.skip("no writable pids cgroup (needs root and the pids controller)")
    yield group
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            (group.parent / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    wait_until(lambda: not (group / "cgroup.procs").read_text().strip(), 15, "the cgroup to empty")
    group.rmdir()


def test_a_session_thread_that_cannot_start_refuses_that_connection_only(
    start_daemon: Start, pids_cgroup: Path,
) -> None:
    # Was a gap: Thread.start's RuntimeError left the accept loop, which ended for good.
    daemon = start_daemon()
    client = daemon.connect()
    assert client.result("ping") == "pong"
    daemon.wait_for_log("warm-up done", timeout=120)  # DoWhy imported: its thread pools exist
    (pids_cgroup / "cgroup.procs").write_text(str(daemon.pid))
    (pids_cgroup / "pids.max").write_text("1")  # below what it runs: no new thread at all
    refused = daemon.connect()  # accepted; its reader thread is refused by the kernel
    error = refused.read_json()["error"]
    assert error["code"] == INTERNAL_ERROR and error["data"]["type"] == "RuntimeError", error
    assert "could not start a thread for this connection" in error["message"]
    assert refused.at_eof()
    assert client.result("ping") == "pong"
    (pids_cgroup / "pids.max").write_text("max")
    again = daemon.connect()
    assert again.result("ping") == "pong" and again.result("status")["pid"] == daemon.pid
    assert "no thread for its session" in daemon.log_text()


# -- a lost socket ----------------------------------------------------------------------------


def lose_socket(path: Path, how: str) -> None:
    if how == "removed":
        path.unlink()
    elif how == "replaced":
        path.unlink()
        stranger = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stranger.bind(str(path))  # another daemon's socket now, as far as the path says
        stranger.close()
    else:
        shutil.rmtree(path.parent)


@pytest.mark.parametrize("how", ["removed", "replaced", "directory_removed"])
def test_a_daemon_whose_socket_path_is_lost_exits(start_daemon: Start, how: str) -> None:
    # Was a gap: the daemon served on, unreachable, until its idle timeout (30 min by default).
    daemon = start_daemon("--socket-check-interval", "1")
    idle = daemon.connect()  # an open idle connection does not keep a lost daemon alive
    assert idle.result("ping") == "pong"
    lose_socket(daemon.path, how)
    assert daemon.wait_exit(90) == 0
    assert idle.at_eof()
    if how == "replaced":  # not its socket any more: left alone
        assert daemon.path.exists()
    if how != "directory_removed":
        assert "no longer names its socket" in daemon.log_text()


def test_a_daemon_that_lost_its_socket_lets_its_running_request_finish_then_exits(
    start_daemon: Start,
) -> None:
    daemon = start_daemon("--socket-check-interval", "1")
    peer, asker = daemon.connect(), daemon.connect()
    running = peer.request("debug.sleep", {"seconds": 20})
    wait_until(lambda: (asker.result("status")["running"] or {}).get("id") == running, 30, "the sleep to run")
    daemon.path.unlink()
    daemon.wait_for_log("no longer names its socket", timeout=30)
    assert daemon.alive()  # the sleep still runs: its client is still connected
    assert "result" in peer.reply_to(running, timeout=60)
    assert daemon.wait_exit(90) == 0
