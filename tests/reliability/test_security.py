"""Security: no request chooses a path, nothing in a request runs as code, stored models load
only after their HMAC verifies, and the worker runs with the client's privileges and
opens no network socket unless a request names a Dask scheduler.

Already proven in tests/e2e/test_store.py and not repeated: five path-like ids refused
by models.load/save/drop, a flipped or truncated file refused, a file from another
store's key refused, a malicious pickle never unpickled.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scm_client import RemoteError, Worker, WorkerStartError

from reliability_support import CHAIN_GRAPH, RawWorker, chain_traces, inet_socket_table, proc_status, socket_inodes, unix_socket_inodes
from support import privileges
from support.procs import descendants
from support.worker_env import ONE_THREAD

MODEL_ID_METHODS = ["sample", "evaluate", "effect", "arrow_strength", "influence", "anomaly",
                    "distribution_change", "report", "models.save", "models.load", "models.drop"]
PATHS = ["../store.key", "../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "m-0123456789abcdef/../../x",
         "m-0123456789abcdef.model", "m-0123456789abcdef\x00", "store.key", ".",
         "..", "", "m-" + "0" * 15, "m-0123456789abcdeg", "M-0123456789ABCDEF", "\\\\host\\share",
         "file:///etc/passwd", "m-0123456789abcdef/", " m-0123456789abcdef"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sandbox")
    dirs = {name: root / name for name in ("cwd", "home", "cache", "store")}
    for name in ("cwd", "home", "cache"):
        dirs[name].mkdir()  # the store is left to the worker to create
    (root / "decoy.model").write_bytes(b"SCMW1\n" + b"\0" * 64)
    dirs["root"] = root
    return dirs


@pytest.fixture(scope="module")
def jailed(sandbox: dict[str, Path]) -> Iterator[RawWorker]:
    """A worker whose cwd, HOME and XDG cache are empty directories we can watch."""
    env = {"HOME": str(sandbox["home"]), "XDG_CACHE_HOME": str(sandbox["cache"])}
    worker = RawWorker("--no-warmup", "--test-methods", "--store", str(sandbox["store"]), env=env, cwd=str(sandbox["cwd"]))
    worker.assert_serving()
    yield worker
    worker.stop()


#: Written by matplotlib (imported with DoWhy) under $XDG_CACHE_HOME: a place the environment
#: chose, not a request.
FONT_CACHE = "cache/matplotlib/"


def every_file(root: Path) -> dict[str, tuple[int, float]]:
    """Every file under ``root`` but matplotlib's font cache: (size, mtime) by relative path."""
    return {name: (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*")
            if p.is_file() and not (name := str(p.relative_to(root))).startswith(FONT_CACHE)}


def outside_the_store(sandbox: dict[str, Path]) -> list[str]:
    """Files in the worker's cwd, HOME or cache directory (matplotlib's font cache aside)."""
    return sorted(name for name in every_file(sandbox["root"]) if name.split("/")[0] in ("cwd", "home", "cache"))


# -- paths --------------------------------------------------------------------------------


#: Other params each method needs, so the model id is what gets checked.
REQUIRED = {"evaluate": {"traces": {}}, "effect": {"target": "X", "alternative": []}, "arrow_strength": {"target": "X"},
            "influence": {"target": "X"}, "anomaly": {"target": "X", "rows": {}},
            "distribution_change": {"target": "X", "old": {}, "new": {}}}


def test_no_model_id_names_a_path_for_any_method(jailed: RawWorker, sandbox: dict[str, Path]) -> None:
    before = every_file(sandbox["root"])
    for method in MODEL_ID_METHODS:
        for bad in PATHS:
            reply = jailed.call(method, {"model_id": bad, **REQUIRED.get(method, {})})
            error = reply.get("error")
            assert error and error["code"] == -32602 and error["data"]["field"] == "model_id", (method, bad, reply)
    assert every_file(sandbox["root"]) == before  # nothing written, nothing touched
    jailed.assert_serving()


def test_a_model_id_with_a_trailing_newline_is_not_an_id(jailed: RawWorker) -> None:
    reply = jailed.call("models.load", {"model_id": "m-0123456789abcdef\n"})
    assert reply["error"]["code"] == -32602, reply


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=40), st.from_regex(r"m-[0-9a-f]{16}", fullmatch=True),
                 st.builds(lambda a, b: a + b, st.sampled_from(["../", "/", "m-", "./", "~/"]), st.text(max_size=20))))
def test_random_model_ids_are_refused_or_unknown_never_a_file(jailed: RawWorker, sandbox: dict[str, Path],
                                                              model_id: str) -> None:
    reply = jailed.call("models.load", {"model_id": model_id})
    error = reply["error"]
    if re.fullmatch(r"m-[0-9a-f]{16}", model_id):  # an id: looked up in the store directory only
        assert error["data"] == {"model_id": model_id, "reason": "unknown"}
    else:
        assert error["code"] == -32602 and error["data"]["field"] == "model_id", reply
    assert outside_the_store(sandbox) == []


def test_files_the_worker_writes_stay_in_the_store_and_are_private(jailed: RawWorker, sandbox: dict[str, Path]) -> None:
    fitted = jailed.result("fit", {"graph": CHAIN_GRAPH, "traces": chain_traces(9), "config": {"seed": 9, "persist": True}},
                           timeout=300)
    jailed.result("models.save", {"model_id": fitted["model_id"]})
    jailed.result("report", {"model_id": fitted["model_id"], "format": "svg"}, timeout=120)  # returned, not written
    assert outside_the_store(sandbox) == []
    store = sandbox["store"]
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "store.key").stat().st_mode) == 0o600
    for path in store.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 or path.suffix in (".json", ".ref", ".node"), path
    model_file = store / f"{fitted['model_id']}.model"
    assert stat.S_IMODE(model_file.stat().st_mode) == 0o600


def test_a_symlink_planted_in_the_store_is_refused_and_its_target_not_revealed(
    jailed: RawWorker, sandbox: dict[str, Path]
) -> None:
    secret = sandbox["root"] / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT " * 10)
    link = sandbox["store"] / "m-5ec2e75ec2e75ec2.model"
    link.symlink_to(secret)
    try:
        reply = jailed.call("models.load", {"model_id": "m-5ec2e75ec2e75ec2"})
        assert reply["error"]["code"] == -32006, reply
        assert "TOP-SECRET" not in json.dumps(reply)
    finally:
        link.unlink()


# -- nothing is code ---------------------------------------------------------------------------


def payloads(marker: Path) -> list[str]:
    touch = f"touch {marker}"
    return [
        f"__import__('os').system('{touch}')",
        f"eval(\"__import__('os').system('{touch}')\")",
        f"lambda x: __import__('os').system('{touch}')",
        f"$({touch})", f"`{touch}`", f"; {touch}", f"| {touch}",
        "{0.__class__.__mro__[1].__subclasses__()}", "%(x)s %s %n", "{{7*7}}", "${7*7}",
        "gASVHAAAAAAAAACMAm9zlIwGc3lzdGVtlJOUjAR0cnVllIWUUpQu",  # base64 of a pickle calling os.system
    ]


def test_no_intervention_config_or_name_is_evaluated_as_code(jailed: RawWorker, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    codes = payloads(marker)
    names = codes[:3]  # node names: code-like strings are just names
    traces = chain_traces(5)
    rows = len(traces["X"])
    columns = {names[0]: traces["X"], names[1]: traces["Y"], names[2]: [codes[i % len(codes)] for i in range(rows)]}
    graph = {"nodes": names, "edges": [[names[0], names[1]], [names[0], names[2]]]}
    fitted = jailed.result("fit", {"graph": graph, "traces": columns, "config": {"seed": 5, "validate_r2": False}},
                           timeout=300)
    model_id = fitted["model_id"]
    assert fitted["scm"]["mechanisms"][names[2]]["type"] == "classifier"
    assert sorted(fitted["scm"]["mechanisms"][names[2]]["classes"]) == sorted(set(codes))
    # a code string that is an observed category is a category: sampled back as data
    drawn = jailed.result("sample", {"model_id": model_id, "kind": "interventional", "num_samples": 20, "seed": 1,
                                     "interventions": [{"type": "hard", "node": names[2], "value": codes[0]}]})
    assert set(drawn["samples"][names[2]]) == {codes[0]}
    refusals = []
    for code in codes:
        specs = [{"type": code, "node": names[1], "value": 1.0},
                 {"type": "soft", "node": names[1], "transform": code, "param": 1.0},
                 {"type": "soft", "node": names[1], "transform": "shift", "param": code},
                 {"type": "hard", "node": names[1], "value": code},
                 {"type": "hard", "node": names[1], "value": 1.0, code: 1}]
        if code not in names:  # a node name is a name; any other string names no node
            specs.append({"type": "hard", "node": code, "value": 1.0})
            refusals.append(jailed.call("sample", {"model_id": model_id, "query_nodes": [code]}))
            refusals.append(jailed.call("effect", {"model_id": model_id, "target": code,
                                                   "alternative": [{"node": names[0], "value": 1.0}]}))
        for spec in specs:
            refusals.append(jailed.call("sample", {"model_id": model_id, "kind": "interventional", "interventions": [spec]}))
        for key in ("quality", "r2_rule", "missing", "seed", "test_size", "validate_r2", code):
            refusals.append(jailed.call("fit", {"graph": graph, "traces": columns, "config": {key: code}}))
        refusals.append(jailed.call("sample", {"model_id": model_id, "kind": code}))
        refusals.append(jailed.call("report", {"model_id": model_id, "format": code}))
        refusals.append(jailed.call("distribution_change", {"model_id": model_id, "target": names[1], "old": {},
                                                            "new": {}, "measure": code}))
        refusals.append(jailed.call(code, {"x": code}))
    for reply in refusals:
        assert "error" in reply and reply["error"]["code"] in (-32602, -32601), reply
    jailed.result("initialize", {"client": codes[0], "protocol_version": codes[1]})
    assert not marker.exists()
    jailed.assert_serving()


# -- the HMAC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(jailed: RawWorker, sandbox: dict[str, Path]) -> tuple[str, bytes]:
    fitted = jailed.result("fit", {"graph": CHAIN_GRAPH, "traces": chain_traces(21), "config": {"seed": 21, "persist": True}},
                           timeout=300)
    return fitted["model_id"], (sandbox["store"] / f"{fitted['model_id']}.model").read_bytes()


def variants(blob: bytes) -> dict[str, bytes]:
    header = 6 + 32
    flip = lambda data, i: data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]  # noqa: E731
    return {
        "magic-flipped": flip(blob, 0),
        "tag-first-byte": flip(blob, 6),
        "tag-last-byte": flip(blob, header - 1),
        "payload-first-byte": flip(blob, header),
        "payload-middle": flip(blob, (header + len(blob)) // 2),
        "payload-last-byte": flip(blob, len(blob) - 1),
        "byte-appended": blob + b"\0",
        "truncated-by-one": blob[:-1],
        "header-only": blob[:header],
        "magic-only": blob[:6],
        "empty": b"",
        "tag-zeroed": blob[:6] + b"\0" * 32 + blob[header:],
        "tag-of-another-payload": blob[:header] + b"\x80\x05N.",  # pickle of None, with the original tag
    }


@pytest.mark.parametrize("variant", sorted(variants(b"SCMW1\n" + b"\1" * 64)))
def test_a_damaged_model_file_is_refused_and_never_loaded(jailed: RawWorker, sandbox: dict[str, Path],
                                                          stored: tuple[str, bytes], variant: str) -> None:
    _, blob = stored
    fake_id = "m-" + os.urandom(8).hex()
    path = sandbox["store"] / f"{fake_id}.model"
    # written under a new id: the tag covers the id too, so even an intact copy would not verify
    path.write_bytes(variants(blob)[variant])
    try:
        reply = jailed.call("models.load", {"model_id": fake_id})
        assert reply["error"]["code"] == -32006, reply
        assert reply["error"]["data"]["model_id"] == fake_id
        assert jailed.call("sample", {"model_id": fake_id, "num_samples": 5})["error"]["code"] == -32006
    finally:
        path.unlink()
    jailed.assert_serving()


def test_an_intact_file_renamed_to_another_id_is_refused_and_the_original_loads(
    jailed: RawWorker, sandbox: dict[str, Path], stored: tuple[str, bytes]
) -> None:
    model_id, blob = stored
    other = "m-" + os.urandom(8).hex()
    (sandbox["store"] / f"{other}.model").write_bytes(blob)
    try:
        assert jailed.call("models.load", {"model_id": other})["error"]["code"] == -32006
    finally:
        (sandbox["store"] / f"{other}.model").unlink()
    assert jailed.result("models.load", {"model_id": model_id}) == {"model_id": model_id, "loaded": True}


def test_a_replaced_store_key_makes_every_model_refused(tmp_path: Path, raw_worker: Any) -> None:
    store = tmp_path / "store"
    first = raw_worker("--no-warmup", "--store", str(store))
    model_id = first.result("fit", {"graph": CHAIN_GRAPH, "traces": chain_traces(3), "config": {"seed": 3, "persist": True}},
                            timeout=300)["model_id"]
    first.stop()
    (store / "store.key").write_bytes(os.urandom(32))
    second = raw_worker("--no-warmup", "--store", str(store))
    reply = second.call("sample", {"model_id": model_id, "num_samples": 5})
    assert reply["error"]["code"] == -32006, reply
    second.assert_serving()


def test_a_damaged_store_key_stops_the_worker_before_it_serves(tmp_path: Path, python311: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    key = os.open(store / "store.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private, but short
    os.write(key, b"short")
    os.close(key)
    worker = Worker(python311, worker_args=("--no-warmup", "--store", str(store), *ONE_THREAD), start_timeout=60)
    try:
        with pytest.raises(WorkerStartError) as caught:
            worker.start()
        assert "store key" in str(caught.value) and "damaged" in str(caught.value)
    finally:
        worker.close()


# -- privileges and sockets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def warm(python311: str) -> Iterator[Worker]:
    """A worker after its warm-up fit, so joblib's processes exist, that has fitted, sampled and answered."""
    worker = Worker(python311, worker_args=("--test-methods", "--no-store"), start_timeout=300)
    worker.start()
    assert worker.wait_until_warm(timeout=300)
    fitted = worker.fit(CHAIN_GRAPH, chain_traces(2), seed=2)
    worker.sample(fitted, "interventional", [{"type": "hard", "node": "X", "value": 1.0}], num_samples=100, seed=1)
    worker.effect(fitted, "Z", [{"type": "hard", "node": "X", "value": 1.0}], [{"type": "hard", "node": "X", "value": 0.0}],
                  num_samples=200)
    yield worker
    worker.close()


def family(worker: Worker) -> list[int]:
    assert worker.pid is not None
    return [worker.pid, *descendants(worker.pid)]


#: the client run as nobody: a worker after its warm-up (joblib's processes exist) that has
#: fitted, sampled and answered an effect; it prints the worker's pid, then waits for stdin
NOBODY_CLIENT = textwrap.dedent("""
    import random, sys
    from scm_client import Worker
    worker = Worker(sys.argv[1], worker_args=("--test-methods", "--no-store"), start_timeout=300)
    worker.start()
    assert worker.wait_until_warm(timeout=300)
    rng = random.Random(2)
    xs = [rng.gauss(0, 1) for _ in range(200)]
    traces = {"X": xs, "Y": [2 * x + rng.gauss(0, 0.1) for x in xs]}
    traces["Z"] = [3 * y + rng.gauss(0, 0.1) for y in traces["Y"]]
    fitted = worker.fit({"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}, traces, seed=2)
    do = lambda v: [{"type": "hard", "node": "X", "value": v}]
    worker.sample(fitted, "interventional", do(1.0), num_samples=100, seed=1)
    worker.effect(fitted, "Z", do(1.0), do(0.0), num_samples=200)
    print("worker", worker.pid, flush=True)
    sys.stdin.read()
    worker.close()
""")
#: nobody, no supplementary group, and one capability: read and search (the interpreters live
#: under root's 0700 home), inherited by what it runs; as tests/worker/test_daemon.py's as_nobody
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
CAP_DAC_READ_SEARCH = 1 << 2
CAP_SETS = ("CapEff", "CapPrm", "CapInh", "CapAmb")


@pytest.fixture
def nobodys_worker(tmp_path: Path, python311: str) -> Iterator[tuple[int, int]]:
    """The client script run as nobody, and the worker it started: (client pid, worker pid)."""
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    client = subprocess.Popen([*AS_NOBODY, sys.executable, "-c", NOBODY_CLIENT, python311], cwd="/", env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None
        line = client.stdout.readline()
        assert line.startswith("worker "), f"the client run as nobody said {line!r}, exit {client.poll()}"
        yield client.pid, int(line.split()[1])
    finally:
        client.kill()
        client.wait()


@privileges.needs_root("becoming nobody needs root and setpriv")
def test_the_worker_and_its_children_run_with_the_clients_ids_and_no_more_capabilities(
    nobodys_worker: tuple[int, int],
) -> None:
    """Run as nobody: as root the client's ids are 0 and it holds every capability, so no
    worker could have more and the check could not fail."""
    client, worker = nobodys_worker
    me = proc_status(client)
    nobody = (str(pwd.getpwnam("nobody").pw_uid), str(grp.getgrnam("nogroup").gr_gid))
    assert (me["Uid"].split(), me["Gid"].split(), me["Groups"].split()) == ([nobody[0]] * 4, [nobody[1]] * 4, [])
    assert all(int(me[caps], 16) == CAP_DAC_READ_SEARCH for caps in ("CapEff", "CapPrm", "CapAmb")), me
    children = descendants(worker)  # from /proc: the worker's children and grandchildren
    assert children, "the warm worker should have started joblib's processes"
    for pid in [worker, *children]:
        status = proc_status(pid)
        assert status["Uid"].split() == me["Uid"].split(), (pid, status["Uid"])
        assert status["Gid"].split() == me["Gid"].split(), (pid, status["Gid"])
        assert status["Groups"].split() == [], (pid, status["Groups"])
        for caps in CAP_SETS:
            assert int(status[caps], 16) & ~int(me[caps], 16) == 0, (pid, caps, status[caps])
    print(f"the worker and its {len(children)} children run as nobody with no capability but the client's")


def test_no_network_socket_after_fit_sample_and_effect(warm: Worker) -> None:
    inet: dict[int, str] = {}
    unix = 0
    for pid in family(warm):
        table = inet_socket_table(pid)
        held = socket_inodes(pid)
        inet.update({inode: f"pid {pid}: {table[inode]}" for inode in held & set(table)})
        unix += len(held & unix_socket_inodes(pid))
    assert inet == {}, f"INET sockets held: {inet}"
    print(f"no INET socket in {len(family(warm))} processes ({unix} unix sockets)")


def test_only_a_request_naming_a_dask_scheduler_opens_a_connection_and_only_to_it(warm: Worker) -> None:
    assert "batch.fit" in warm.info["methods"]
    assert not any(socket_inodes(pid) & set(inet_socket_table(pid)) for pid in family(warm))
    # per accepted connection: (was its other end a socket of the worker's family?, the family's
    # INET sockets connected anywhere else)
    seen: list[tuple[bool, list[str]]] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        address = f"tcp://127.0.0.1:{port}"
        done = threading.Event()

        def answer() -> None:  # accept, look, hang up: not a Dask scheduler
            while not done.is_set():
                try:
                    connection, peer = listener.accept()
                except TimeoutError:
                    continue
                rows = [row for pid in family(warm) for inode in socket_inodes(pid)
                        if (row := inet_socket_table(pid).get(inode))]  # "proto local -> remote"
                ours = any(row.split()[1].endswith(f":{peer[1]:04X}") for row in rows)
                elsewhere = [row for row in rows if not row.split()[3].endswith(f":{port:04X}")]
                seen.append((ours, elsewhere))
                connection.close()

        acceptor = threading.Thread(target=answer, daemon=True)
        acceptor.start()
        try:
            with pytest.raises(RemoteError) as caught:
                warm.call("batch.fit", {"requests": [], "scheduler": address, "connect_timeout": 3}, timeout=120)
        finally:
            done.set()
            acceptor.join(10)
    assert caught.value.code == -32008 and caught.value.data["scheduler"] == address, caught.value
    # the worker dialled the named address from its own process (a retry may be gone by the time it is
    # accepted, so at least one), and held no connection to anywhere else
    assert any(ours for ours, _ in seen), seen
    assert all(elsewhere == [] for _, elsewhere in seen), seen
    assert warm.ping() == "pong"


def test_batch_fit_to_a_silent_address_gives_up_within_its_connect_timeout(make_worker: Any) -> None:
    # Was a hang (over 300 s with connect_timeout 3): distributed.Client bounds the TCP connect, not
    # the handshake after it. The worker now asks the address who it is under its own deadline.
    # The bound is docs/PROTOCOL.md's: "no_answer" within twice connect_timeout (the TCP connect and
    # the identity question each get connect_timeout). Measured from the client, so a warm-up call
    # first pays the one-off import of distributed, and 1.5 s are allowed for the round trip on a busy
    # machine (about 0.05 s idle); the call must also have waited at least connect_timeout.
    worker = make_worker()
    timeout = 3.0
    with socket.socket() as closed:  # bound, never listening: refused at once; imports distributed
        closed.bind(("127.0.0.1", 0))
        with pytest.raises(RemoteError):
            worker.call("batch.fit", {"requests": [], "scheduler": f"tcp://127.0.0.1:{closed.getsockname()[1]}",
                                      "connect_timeout": 0.5}, timeout=120)
    with socket.socket() as listener:  # listens, so connections complete, but never accepts or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(RemoteError) as caught:  # a hang ends in WorkerTimeout instead
            worker.call("batch.fit", {"requests": [], "scheduler": address, "connect_timeout": timeout}, timeout=20)
        waited = time.monotonic() - started
    print(f"silent address: -32008 {caught.value.data.get('reason')} after {waited:.2f} s (connect_timeout {timeout:g})")
    assert caught.value.code == -32008
    assert caught.value.data["reason"] == "no_answer" and caught.value.data["scheduler"] == address
    assert timeout <= waited < 2 * timeout + 1.5, f"gave up after {waited:.2f} s, connect_timeout {timeout:g}"
    assert worker.ping() == "pong"
