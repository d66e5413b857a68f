"""The daemon (``python -m scm_worker --listen PATH``) as real processes over raw Unix sockets.

Who may connect (another uid is refused by the kernel's file permissions and by
``SO_PEERCRED``), the lock and the stale socket, the start race, kill -9 and the store,
idle exit, SIGTERM, ``status`` during a fit, sessions that never see each other's
replies, the fair queue, per-connection column encodings, and output that must land in
the log. Cancellation has its own module (test_cancel.py).

The other-uid tests need root (to become ``nobody`` with ``setpriv``); CI runs the
suites as root, as here.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import stat
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import scm_worker
from support import privileges
from support.daemon import DaemonProcess, SocketPeer, remove_tree, short_dir
from support.procs import pid_alive, wait_until
from support.timing import assert_within

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: shadows nothing
import datagen

Start = Callable[..., DaemonProcess]

PERMISSION_DENIED = -32009
REQUEST_CANCELLED = -32800
NOBODY = "nobody"

needs_root = privileges.needs_root("becoming another uid needs root and setpriv")


def nobody_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(NOBODY)
    return entry.pw_uid, entry.pw_gid


def as_nobody(*, read_search: bool = False) -> list[str]:
    """``setpriv`` to uid/gid nobody with no supplementary groups.

    ``read_search`` keeps one capability, CAP_DAC_READ_SEARCH, across the uid change:
    the test's interpreter may live under root's 0700 home (pyenv), which nobody could
    not even execute. It lets the process read and search directories, nothing else:
    its uid, what it owns and what SO_PEERCRED reports are nobody's all the same.
    """
    prefix = ["setpriv", f"--reuid={NOBODY}", "--regid=nogroup", "--clear-groups"]
    if read_search:
        prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return prefix


def plain_python_for_nobody() -> str | None:
    """An interpreter nobody can run without any capability (the client needs only stdlib)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run([*as_nobody(), candidate, "-c", "pass"],
                                        capture_output=True, cwd="/", check=False).returncode == 0:
            return candidate
    return None


def tiny_graph(prefix: str, rows: int = 300, seed: int = 0) -> dict[str, Any]:
    """datagen's chain X → Y → Z with every node renamed ``<prefix>X`` …: told apart by name."""
    request = datagen.chain(rows, seed)
    rename = {n: prefix + n for n in request["graph"]["nodes"]}
    return {
        "graph": {"nodes": list(rename.values()),
                  "edges": [[rename[a], rename[b]] for a, b in request["graph"]["edges"]]},
        "traces": {rename[n]: v for n, v in request["traces"].items()},
    }


def assert_cancelled(reply: dict[str, Any], stage: str) -> None:
    assert reply["error"]["code"] == REQUEST_CANCELLED, reply
    assert reply["error"]["data"]["stage"] == stage, reply


# -- who may connect ----------
@needs_root
def test_daemon_of_another_uid_refuses_a_root_peer_with_32009() -> None:
    uid, gid = nobody_ids()
    home = short_dir()
    os.chown(home, uid, gid)
    try:
        daemon = DaemonProcess(home / "run" / "d.sock", prefix=as_nobody(read_search=True),
                               env={"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
                                    "XDG_RUNTIME_DIR": str(home)}, cwd=str(home))
        try:
            daemon.ready()
            assert os.stat(daemon.path).st_uid == uid
            peer = daemon.connect()  # root: the file system lets it in, the daemon must not
            refusal = peer.read_json()
            assert refusal["id"] is None and refusal["jsonrpc"] == "2.0"
            assert refusal["error"]["code"] == PERMISSION_DENIED
            assert refusal["error"]["data"] == {"uid": 0}
            assert "uid 0" in refusal["error"]["message"], refusal
            assert peer.at_eof(), "the refused connection stays open"
            daemon.wait_for_log("refused a connection from uid 0")
            assert daemon.alive()
        finally:
            daemon.stop()
    finally:
        remove_tree(home)


@needs_root
@pytest.mark.parametrize("guard", ["directory", "socket"])
def test_client_of_another_uid_is_refused_by_the_file_system(start_daemon: Start, guard: str) -> None:
    """``directory``: the 0700 directory alone keeps nobody out; ``socket``: with the
    directory opened up by hand (0755), the socket's own 0600 still does."""
    python = plain_python_for_nobody()
    if python is None:
        privileges.unprivileged("no interpreter that nobody can run")
    daemon = start_daemon()
    if guard == "socket":
        daemon.path.parent.chmod(0o755)
    os.chmod(daemon.path.parent.parent, 0o755)  # short_dir is 0700: let nobody reach run/
    client = ("import socket, sys\n"
              "s = socket.socket(socket.AF_UNIX)\n"
              "try:\n    s.connect(sys.argv[1])\n"
              "except PermissionError as e:\n    print('refused', e.errno); sys.exit(3)\n"
              "print('connected', s.recv(4096))\n")
    run = subprocess.run([*as_nobody(), python, "-c", client, str(daemon.path)],
                         capture_output=True, text=True, timeout=60, cwd="/", check=False)
    assert run.returncode == 3, (run.stdout, run.stderr)
    assert run.stdout.split() == ["refused", "13"]  # EACCES
    peer = daemon.connect()
    assert peer.result("ping") == "pong"
    assert peer.result("status")["connections"] == 1
    assert "refused" not in daemon.log_text()  # it never reached the daemon


def test_directory_is_0700_socket_0600_and_the_lock_is_held(start_daemon: Start) -> None:
    directory = start_daemon.directory / "run"  # type: ignore[attr-defined]
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # ours but too open: the daemon makes it private
    daemon = start_daemon()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    info = os.lstat(daemon.path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    lock = daemon.path.with_name(daemon.path.name + ".lock")
    assert json.loads(lock.read_text())["pid"] == daemon.pid
    assert _holds_flock(daemon.pid, lock)


def _holds_flock(pid: int, path: Path) -> bool:
    """True when ``pid`` has an FLOCK on ``path`` (from /proc/locks)."""
    inode = os.stat(path).st_ino
    with open("/proc/locks") as locks:
        return any(" FLOCK " in line and f" {pid} " in line and f":{inode} " in line for line in locks)


@needs_root
def test_directory_owned_by_another_uid_is_an_error_announcement_and_exit_1() -> None:
    uid, gid = nobody_ids()
    home = short_dir()
    (home / "run").mkdir(mode=0o700)
    os.chown(home / "run", uid, gid)
    try:
        daemon = DaemonProcess(home / "run" / "d.sock")
        try:
            message = daemon.announced()
            assert set(message) == {"error"}, message
            assert str(home / "run") in message["error"] and str(uid) in message["error"], message
            assert daemon.wait_exit() == 1
            assert not (home / "run" / "d.sock").exists()
        finally:
            daemon.stop()
    finally:
        remove_tree(home)


# -- one daemon per path ----------
def test_a_stale_socket_file_is_replaced_and_served(start_daemon: Start) -> None:
    path = start_daemon.directory / "run" / "d.sock"  # type: ignore[attr-defined]
    path.parent.mkdir(mode=0o700)
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(path))  # bound, never listened, closed without unlink: what a crash leaves
    left.close()
    with pytest.raises(ConnectionRefusedError):
        SocketPeer(path)
    daemon = start_daemon(path=path)
    assert daemon.connect().result("ping") == "pong"
    # said in the daemon's log, which takes over before the socket is bound; a private file
    assert "replacing stale socket" in daemon.log_text()
    assert "replacing stale socket" not in daemon.startup_stderr()
    assert stat.S_IMODE(daemon.log_path().stat().st_mode) == 0o600


def test_ten_daemons_started_at_once_leave_exactly_one(start_daemon: Start) -> None:
    path = start_daemon.directory / "run" / "d.sock"  # type: ignore[attr-defined]
    daemons = [start_daemon(path=path, wait=False) for _ in range(10)]
    messages = [d.announced() for d in daemons]
    winners = [d for d, m in zip(daemons, messages, strict=True) if "listening" in m]
    assert len(winners) == 1, messages
    winner = winners[0]
    losers = [(d, m) for d, m in zip(daemons, messages, strict=True) if d is not winner]
    for loser, message in losers:
        assert message == {"already_running": str(path), "pid": winner.pid}, messages
        assert loser.wait_exit() == 0
    assert winner.alive()
    status = winner.connect().result("status")
    assert status["pid"] == winner.pid and status["connections"] == 1


def test_kill_9_ends_every_connection_and_a_new_daemon_serves_persisted_models(
    start_daemon: Start,
) -> None:
    store = start_daemon.directory / "store"  # type: ignore[attr-defined]
    daemon = start_daemon("--store", str(store))
    fitter, idle = daemon.connect(), daemon.connect()
    fitted = fitter.result("fit", {**tiny_graph("k"), "config": {"seed": 3, "persist": True}},
                           timeout=300)
    model_id = fitted["model_id"]
    busy = fitter.request("debug.sleep", {"seconds": 60})
    wait_until(lambda: (idle.result("status")["running"] or {}).get("id") == busy, 30,
               "the sleep to run")
    os.kill(daemon.pid, signal.SIGKILL)
    assert fitter.at_eof() and idle.at_eof(), "a connection outlived its daemon"
    daemon.wait_exit()
    assert daemon.path.exists()  # left behind: the next daemon must replace it
    again = start_daemon("--store", str(store))
    assert again.pid != daemon.pid
    peer = again.connect()
    listed = {m["model_id"]: m for m in peer.result("models.list")["models"]}
    assert listed[model_id]["where"] == "disk", listed
    sample = peer.result("sample", {"model_id": model_id, "num_samples": 20, "seed": 1}, timeout=120)
    assert set(sample["samples"]) == {"kX", "kY", "kZ"}
    assert len(sample["samples"]["kZ"]) == 20


# -- lifetime ----------
def test_idle_daemon_exits_0_and_removes_its_socket(start_daemon: Start) -> None:
    spawned = time.monotonic()
    daemon = start_daemon("--idle-timeout", "2")
    ready = time.monotonic()  # start-up (most of a second) is not the idle exit's to count
    assert daemon.wait_exit(30) == 0
    exited = time.monotonic()
    assert exited - spawned >= 2.0  # never before its timeout (its clock starts before ready)
    assert_within("idle exit past the 2 s timeout, from readiness", exited - ready - 2.0,
                  target=1.0, liveness=10.0)  # the accept loop looks at the clock every 0.5 s
    assert not daemon.path.exists()
    assert "idle for 2.0s" in daemon.log_text()


def test_a_connected_idle_client_keeps_the_daemon_alive(start_daemon: Start) -> None:
    daemon = start_daemon("--idle-timeout", "2")
    peer = daemon.connect()
    time.sleep(5)
    assert daemon.alive()
    assert peer.result("ping") == "pong"
    peer.close()
    assert daemon.wait_exit(30) == 0  # its idle clock starts when the last one leaves
    assert not daemon.path.exists()


def test_sigterm_stops_running_and_queued_work_exits_0_and_removes_the_socket(
    start_daemon: Start,
) -> None:
    daemon = start_daemon()
    peer = daemon.connect()
    running = peer.request("debug.sleep", {"seconds": 60})
    queued = peer.request("debug.sleep", {"seconds": 0})
    wait_until(lambda: (daemon.connect().result("status")["running"] or {}).get("id") == running,
               30, "the sleep to run")
    os.kill(daemon.pid, signal.SIGTERM)
    replies = {r["id"]: r for r in (peer.read_json(), peer.read_json())}
    assert_cancelled(replies[queued], "queued")
    assert "shutting down" in replies[queued]["error"]["message"]
    assert_cancelled(replies[running], "running")
    assert peer.at_eof()
    assert daemon.wait_exit() == 0
    assert not daemon.path.exists()
    with pytest.raises(FileNotFoundError):
        SocketPeer(daemon.path)


# -- serving many connections ----------
def test_status_answers_within_50_ms_during_a_fit(start_daemon: Start) -> None:
    daemon = start_daemon("--warmup")
    fitter, asker = daemon.connect(), daemon.connect()
    assert asker.result("warmup", {}, timeout=300)["warm"] is True
    fit = fitter.request("fit", {**datagen.case_data("dag"), "config": {"seed": 5, "cache": False}})
    wait_until(lambda: (asker.result("status")["running"] or {}).get("method") == "fit", 60,
               "the fit to run")
    latencies, statuses = [], []
    for _ in range(10):
        started = time.perf_counter()
        statuses.append(asker.result("status"))
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    print("status latencies during a fit (ms):", [round(s * 1000, 1) for s in latencies],
          f"median {statistics.median(latencies) * 1000:.1f}")
    assert all(s["running"]["id"] == fit and s["running"]["method"] == "fit" for s in statuses)
    elapsed = [s["running"]["elapsed_s"] for s in statuses]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert statistics.median(latencies) <= 0.050
    assert max(latencies) < 1.0
    assert set(statuses[-1]) == {
        "pid", "worker_version", "protocol_version", "uptime_s", "warm", "connections",
        "requests_served", "queue_length", "running", "models", "rss_mb", "socket",
        "idle_timeout_s", "threads", "store_dir",
        "python", "prefix", "worker_path", "source_digest", "environment_key", "stale", "fast",
    }
    last = statuses[-1]
    assert {"pruned_selection", "lean_grower", "tree_tables"} == set(last["fast"])
    assert last["python"] == sys.executable and last["prefix"] == sys.prefix
    assert last["worker_path"] == str(Path(scm_worker.__file__).parent) and not last["stale"]
    assert last["pid"] == daemon.pid and last["connections"] == 2 and last["warm"] is True
    assert last["socket"] == str(daemon.path) and last["queue_length"] == 0
    assert {"in_memory", "on_disk"} <= set(last["models"]) and last["rss_mb"] > 0
    assert set(last["running"]) == {"method", "id", "session", "elapsed_s"}
    fitter.cancel(fit)
    assert_cancelled(fitter.reply_to(fit, timeout=60), "running")


def test_connections_never_see_each_others_replies_or_progress(start_daemon: Start) -> None:
    """Three connections use the SAME ids at once; each gets exactly its own answers."""
    daemon = start_daemon()
    peers = [daemon.connect() for _ in range(3)]
    count = 15
    seconds = [0.001 * (k + 1) for k in range(3)]  # what each connection's sleeps echo

    def send(k: int) -> None:
        peer = peers[k]
        for i in range(count):
            peer.request("debug.sleep", {"seconds": seconds[k]}, id_=i)
        peer.request("fit", {**tiny_graph("abc"[k], seed=k), "config": {"seed": k}}, id_="fit")
        for i in range(count, 2 * count):
            peer.request("debug.sleep", {"seconds": seconds[k]}, id_=i)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k, peer in enumerate(peers):
        replies, notes = {}, []
        while len(replies) < 2 * count + 1:
            message = peer.read_json(timeout=300)
            if "id" in message:
                assert message["id"] not in replies, f"two replies to {message['id']}"
                replies[message["id"]] = message
            else:
                notes.append(message)
        assert set(replies) == {*range(2 * count), "fit"}
        assert all(replies[i]["result"] == seconds[k] for i in range(2 * count)), replies
        fit = replies["fit"]["result"]
        own = {"abc"[k] + n for n in "XYZ"}
        assert set(fit["scm"]["mechanisms"]) == own, fit["scm"]["mechanisms"]
        assert notes and all(n["method"] == "progress" and n["params"]["request_id"] == "fit"
                             for n in notes)
        named = {n["params"]["node"] for n in notes if "node" in n["params"]}
        assert named and named <= own, (k, named)
    for peer in peers:
        assert peer.result("ping") == "pong" and not peer.pending()


def test_fair_queue_serves_connections_in_turn_and_each_in_order(start_daemon: Start) -> None:
    daemon = start_daemon()
    a, b = daemon.connect(), daemon.connect()
    a_ids = [a.request("debug.sleep", {"seconds": 0.4}, id_=f"a{i}") for i in range(4)]
    wait_until(lambda: (b.result("status")["running"] or {}).get("id") == "a0", 30, "a0 to run")
    b.request("debug.sleep", {"seconds": 0.4}, id_="b0")
    a_replies = [a.read_json(timeout=60) for _ in a_ids]
    b_reply = b.read_json(timeout=60)
    assert [r["id"] for r in a_replies] == a_ids  # FIFO within a connection
    assert b_reply["id"] == "b0"
    b_at = next(t for t, line in b.arrivals if b'"b0"' in line)
    before_b = [json.loads(line)["id"] for t, line in a.arrivals if t < b_at]
    print("A's replies before B's:", before_b)
    # a0 was running when b0 was queued; round-robin lets at most one more of A's go first
    assert before_b in (["a0"], ["a0", "a1"]), before_b


def test_column_encodings_apply_per_connection(start_daemon: Start) -> None:
    daemon = start_daemon()
    binary, plain = daemon.connect(), daemon.connect()
    assert binary.result("initialize", {"column_encodings": ["json", "binary"]})["daemon"] is True
    assert plain.result("initialize", {})["socket"] == str(daemon.path)
    model_id = plain.result("fit", {**tiny_graph("e"), "config": {"seed": 1}}, timeout=300)["model_id"]
    ask = {"model_id": model_id, "num_samples": 8, "seed": 2}
    as_blocks = binary.result("sample", ask, timeout=120)["samples"]
    as_lists = plain.result("sample", ask, timeout=120)["samples"]
    assert set(as_blocks) == set(as_lists) == {"eX", "eY", "eZ"}
    for node, column in as_blocks.items():
        assert isinstance(column, dict) and column["dtype"] == "float64", column
        assert isinstance(as_lists[node], list) and len(as_lists[node]) == 8
        assert list(struct.unpack("<8d", base64.b64decode(column["data"]))) == pytest.approx(
            as_lists[node], rel=1e-12)


def test_printed_output_lands_in_the_log_never_on_a_connection(start_daemon: Start) -> None:
    daemon = start_daemon()
    peer, other = daemon.connect(), daemon.connect()
    for target in ("fd1", "stderr", "sys.stdout"):
        marker = f"stray-{target}-{daemon.pid}"
        assert peer.result("debug.print", {"text": marker, "target": target}) == target
        daemon.wait_for_log(marker)
    assert peer.result("ping") == "pong" and other.result("ping") == "pong"
    assert not peer.pending() and not other.pending()
    for line in daemon.log_text().splitlines():
        if "stray-" in line:
            assert "scm_worker.output" in line, line  # through the log's drain, as a log record
    assert pid_alive(daemon.pid)


@pytest.mark.parametrize("value", [b"42", b'"ping"', b"null", b"true"])
def test_a_json_value_that_is_no_request_is_answered_and_the_session_serves_on(
    start_daemon: Start, value: bytes,
) -> None:
    """Not an object, not an array: -32600 with a null id, at once (it once killed the
    connection's reader: it was queued as if it were a batch)."""
    daemon = start_daemon()
    peer = daemon.connect()
    peer.send_raw(value + b"\n")
    reply = peer.read_json(timeout=10)
    assert reply["error"]["code"] == -32600 and reply["id"] is None, reply
    assert peer.result("ping") == "pong"
