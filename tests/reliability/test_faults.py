"""Faults: the worker killed mid-fit, a hung request, a stderr flood, a kill while saving.

Already proven elsewhere and not repeated: a crash fails every pending call and the next
call restarts (tests/e2e/test_lifecycle.py::test_every_pending_call_gets_worker_crashed_
when_the_worker_is_killed, with debug.sleep), a timeout kills and restarts
(…::test_timeout_kills_and_next_call_restarts), the restart limit, and a fake worker's
stderr flood (tests/client/test_fake_worker.py::test_stderr_flood_does_not_deadlock).
Here the same guarantees are exercised with the real worker doing real work, several
callers at once.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_support import RawWorker, chain_traces, join_all, record_figures
from scm_client import InvalidParams, StoreCorrupt, Worker, WorkerCrashed, WorkerTimeout
from support.procs import descendants, describe, pid_alive, wait_until
from support.worker_env import FAST_ARGS, JOBLIB_THREADS, ONE_THREAD, worker_python

MakeWorker = Callable[..., Worker]
CHAIN = {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}


def pending_calls(worker: Worker) -> int:
    channel = worker._channel
    return 0 if channel is None else len(channel._pending)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# -- kill -9 during a fit -------------------------------------------------------------------


def nodes_fitting(params: dict[str, Any]) -> bool:
    """A ``fitting`` progress after a node finished, with nodes still to go: joblib is at work."""
    return params.get("stage") == "fitting" and 1 <= params.get("done", 0) < params.get("total", 0)


def long_chain(nodes: int, rows: int, seed: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """A linear chain v0 → v1 → …: ``nodes - 1`` node fits, shared among joblib's processes."""
    rng, names = random.Random(seed), [f"v{i}" for i in range(nodes)]
    traces, parent = {}, [0.0] * rows
    for name in names:
        traces[name] = parent = [2.0 * p + rng.gauss(0.0, 1.0) for p in parent]
    return {"nodes": names, "edges": [[a, b] for a, b in itertools.pairwise(names)]}, traces


def survivors_after(pids: list[int], timeout: float) -> list[str]:
    """Waits up to ``timeout`` for every pid to be gone; those still alive then, described."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [describe(p) for p in pids if pid_alive(p)]


def test_kill_9_during_a_fit_fails_every_pending_caller_with_the_stderr_tail_and_the_next_call_works(
    make_worker: MakeWorker,
) -> None:
    fitting = threading.Event()
    worker = make_worker(worker_args=(*FAST_ARGS, *JOBLIB_THREADS),
                         on_progress=lambda params: nodes_fitting(params) and fitting.set())
    worker.start()
    marker = f"last-words-{uuid.uuid4().hex}"
    worker.call("debug.print", {"text": marker, "target": "stderr"})
    graph, traces = long_chain(8, 3000, seed=3)
    fit_thread, fit_outcome = in_thread(lambda: worker.fit(graph, traces, seed=3, quality="BETTER",
                                                           validate_r2=False))
    # killed once node tasks run in joblib's processes (a node fitted, more to go), not before
    assert fitting.wait(120), "the fit never reported a fitted node with more to go"
    # three computations queued behind the fit (a ping would be answered at once: a control request)
    others = [in_thread(lambda: worker.call("debug.sleep", {"seconds": 0.02})),
              in_thread(lambda: worker.call("debug.sleep", {"seconds": 0.01})),
              in_thread(lambda: worker.call("models.list"))]
    wait_until(lambda: pending_calls(worker) == 4, 30, "the fit and three more calls in flight")
    victim = worker.pid
    assert victim is not None
    family = descendants(victim)  # children and grandchildren, from /proc: joblib's processes
    assert family, "the worker had no child process while its nodes were being fitted"
    os.kill(victim, signal.SIGKILL)
    join_all([fit_thread, *(t for t, _ in others)], timeout=30)
    for outcome in [fit_outcome, *(o for _, o in others)]:
        assert len(outcome) == 1 and isinstance(outcome[0], WorkerCrashed), outcome
        assert outcome[0].exit_code == -signal.SIGKILL
        assert marker in outcome[0].stderr_tail
    # orphaned (parent 1) in the dead worker's process group: the client kills that group as
    # soon as the worker's stdout ends, before any next call
    survivors = survivors_after(family, 10)
    assert not survivors, "the killed worker's children outlived it:\n" + "\n".join(survivors)
    fitted = worker.fit(CHAIN, chain_traces(4), seed=4)  # the next call restarts and works
    assert fitted.scm["graph"]["nodes"] == ["X", "Y", "Z"]
    assert worker.starts == 2 and worker.pid != victim
    print(f"{len(family)} child processes of the worker at the kill, all gone")
    record_figures("kill_9_during_a_fit", children=len(family))


# -- a hung request -------------------------------------------------------------------------


def test_hung_request_times_out_and_other_callers_carry_on_after_the_restart(make_worker: MakeWorker) -> None:
    worker = make_worker(cancel_grace=0)  # a request that ignores cancellation: the kill path
    worker.start()
    first = worker.pid
    stop = threading.Event()
    hung_at: list[float] = []
    records: dict[int, list[tuple[float, str]]] = {t: [] for t in range(4)}

    def bystander(t: int) -> None:
        k = 0
        while not stop.is_set():
            k += 1
            value = round(t + k / 1e6, 7)
            try:
                got = worker.call("debug.sleep", {"seconds": value / 1e4}, timeout=60)
                records[t].append((time.monotonic(), "ok" if got == value / 1e4 else f"wrong {got!r}"))
            except WorkerCrashed:
                records[t].append((time.monotonic(), "crashed"))
            except Exception as exc:  # noqa: BLE001 - reported below
                records[t].append((time.monotonic(), repr(exc)))

    threads = [threading.Thread(target=bystander, args=(t,), daemon=True) for t in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(len(r) >= 20 for r in records.values()), 60, "the bystanders to get going")
    hung_at.append(time.monotonic())
    with pytest.raises(WorkerTimeout):
        worker.call("debug.sleep", {"seconds": 600}, timeout=1.0)
    timed_out = time.monotonic()
    assert timed_out - hung_at[0] < 15
    assert not pid_alive(first)  # killed, not left sleeping
    wait_until(lambda: all(sum(1 for when, what in r if when > timed_out and what == "ok") >= 20 for r in records.values()),
               90, "20 good calls per bystander after the restart")
    stop.set()
    join_all(threads, timeout=60)
    for t, record in records.items():
        outcomes = [what for _, what in record]
        assert set(outcomes) <= {"ok", "crashed"}, (t, [o for o in outcomes if o not in ("ok", "crashed")])
        crashes = [when for when, what in record if what == "crashed"]
        assert len(crashes) <= 2 and all(when >= hung_at[0] for when in crashes), (t, crashes)
        last = outcomes[-20:]
        assert last == ["ok"] * 20, (t, last)
    assert worker.starts == 2


# -- stderr flood -----------------------------------------------------------------------------


def test_stderr_flood_blocks_neither_the_worker_nor_the_client(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.start()
    block = "x" * 1_000_000
    targets = ["stderr", "fd1", "sys.stdout"]  # all three land on stderr
    flood_thread, flood = in_thread(lambda: [worker.call("debug.print", {"text": f"{block} flood-{i}", "target": targets[i % 3]},
                                                         timeout=120) for i in range(40)])
    ping_thread, pings = in_thread(lambda: [worker.call("debug.sleep", {"seconds": i / 1e5}, timeout=120) for i in range(300)])
    started = time.monotonic()
    join_all([flood_thread, ping_thread], timeout=180)
    assert flood[0] == [targets[i % 3] for i in range(40)], str(flood)[:300]
    assert pings[0] == [i / 1e5 for i in range(300)], str(pings)[:300]
    channel = worker._channel
    assert channel is not None
    wait_until(lambda: "flood-39" in channel.stderr_tail(), 30, "the flood's last line in the stderr tail")
    assert len(channel.stderr_tail().splitlines()) <= 200
    assert worker.starts == 1 and time.monotonic() - started < 180


# -- killed while saving ----------------------------------------------------------------------


def fault_rng() -> random.Random:
    """The kills' timing: random, seeded by SCM_FAULT_SEED if set, and always printed to replay."""
    seed = int(os.environ.get("SCM_FAULT_SEED", "0")) or random.randrange(1, 2**32)
    print(f"fault timing seed: SCM_FAULT_SEED={seed}")
    return random.Random(seed)


SAVER = textwrap.dedent("""
    import os, pickle, sys
    from pathlib import Path
    from scm_worker.engine.persistence import ModelFiles
    files = ModelFiles(Path(sys.argv[1]))
    blob = os.urandom(4_000_000)
    ids = ["m-%016x" % i for i in range(3)]
    print("ready", flush=True)
    i = 0
    while True:  # the store's own write path: pickled once, then written (ModelStore._persist)
        files.write_payload(ids[i % 3], pickle.dumps({"i": i, "blob": blob}))
        i += 1
""")

CHECKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from scm_worker.errors import WorkerError
    from scm_worker.engine.persistence import ModelFiles
    files = ModelFiles(Path(sys.argv[1]))
    report = {}
    # the directory itself, hidden files too: files.ids() already leaves the ".tmp-*" leftovers out
    for path in sorted(files.directory.glob("*.model")):
        model_id = path.name.removesuffix(".model")
        try:
            obj = files.read(model_id)
            report[model_id] = "ok" if len(obj["blob"]) == 4_000_000 else "wrong"
        except WorkerError as exc:
            report[model_id] = exc.code
    print(json.dumps(report))
""")


def test_model_files_killed_mid_write_are_whole_or_absent(tmp_path: Path) -> None:
    """The store's write path (temp file, fsync, rename) killed at random moments, many times."""
    store = tmp_path / "store"
    rng = fault_rng()
    kills = int(os.environ.get("SCM_SAVE_KILLS", "25"))
    for _ in range(kills):
        saver = subprocess.Popen([worker_python(), "-c", SAVER, str(store)], stdout=subprocess.PIPE)
        assert saver.stdout is not None and saver.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.4))  # the fault's timing, drawn at random: nothing waits on it
        saver.kill()
        saver.wait()
        saver.stdout.close()
    checked = subprocess.run([worker_python(), "-c", CHECKER, str(store)], capture_output=True, check=True)
    report = json.loads(checked.stdout)
    models = {k: v for k, v in report.items() if not k.startswith(".tmp-")}
    leftovers = sorted(p.name for p in store.glob(".tmp-*"))
    print(f"{kills} kills: {len(models)} model files, {len(leftovers)} temporary leftovers")
    record_figures("killed_mid_write", kills=kills, models=len(models), leftovers=len(leftovers),
                   failed_to_verify=sum(v != "ok" for v in models.values()))
    assert models and set(models.values()) == {"ok"}, report
    # a leftover temporary file (a kill between write and rename) never verifies as a model;
    # the saver writes 4 MB and fsyncs in a loop, so kills land mid-write and leave some
    assert leftovers, f"no kill of {kills} landed between write and rename: nothing was exercised ({report})"
    assert {k for k in report if k.startswith(".tmp-")} == {k.removesuffix(".model") for k in leftovers}, report
    assert all(v == -32006 for k, v in report.items() if k.startswith(".tmp-")), report


def test_worker_killed_while_saving_never_serves_a_half_file(tmp_path: Path, make_worker: MakeWorker) -> None:
    store = tmp_path / "store"
    args = ("--no-warmup", "--test-methods", "--store", str(store), *ONE_THREAD)
    worker = make_worker(worker_args=args, max_restarts=100)
    models = [worker.fit(CHAIN, chain_traces(seed, rows=4000), seed=seed, persist=True, validate_r2=False).model_id
              for seed in (1, 2)]
    rng = fault_rng()
    rounds = int(os.environ.get("SCM_SAVE_ROUNDS", "4"))
    mid_save = 0  # kills that landed while a save was in flight (a saver got WorkerCrashed)
    for _ in range(rounds):
        for model in models:  # back in memory (after HMAC verification) before the savers start
            worker.call("models.load", {"model_id": model}, timeout=120)
        stop = threading.Event()
        outcomes: list[BaseException | str] = []

        def save(model: str, stop: threading.Event, outcomes: list[BaseException | str]) -> None:
            try:
                while not stop.is_set():
                    worker.save(model, timeout=60)
                outcomes.append("stopped")
            except WorkerCrashed:
                outcomes.append("crashed")
            except BaseException as exc:  # noqa: BLE001 - anything else fails the test below
                outcomes.append(exc)

        savers = [threading.Thread(target=save, args=(m, stop, outcomes), daemon=True) for m in models]
        for saver in savers:
            saver.start()
        time.sleep(rng.uniform(0.05, 0.5))  # the fault's timing, drawn at random
        victim = worker.pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        stop.set()  # a saver between two calls may restart the worker: it stops after that save
        join_all(savers, timeout=120)
        unexpected = [o for o in outcomes if not isinstance(o, str)]
        assert not unexpected and len(outcomes) == len(savers), f"a saver died of {outcomes!r}"
        mid_save += "crashed" in outcomes
    worker.close()
    leftovers = sorted(p.name for p in store.glob(".tmp-*"))
    print(f"{rounds} kills while saving, {mid_save} during a save: {len(leftovers)} temporary leftovers "
          "(kills between write and rename)")
    record_figures("killed_while_saving", kills=rounds, during_a_save=mid_save, leftovers=len(leftovers))
    assert mid_save, f"none of the {rounds} kills landed while a save was in flight: nothing was exercised"
    # a fresh worker on the store: every model file loads or is refused, nothing else
    fresh = make_worker(worker_args=args)
    for path in store.glob("*.model"):
        model_id = path.name.removesuffix(".model")
        if path.name.startswith(".tmp-"):
            with pytest.raises(InvalidParams) as refused:  # not an id: never opened (-32006 would mean it was)
                fresh.call("models.load", {"model_id": model_id})
            assert refused.value.data["field"] == "model_id", refused.value.data
            continue
        try:
            fresh.call("models.load", {"model_id": model_id}, timeout=120)
        except StoreCorrupt:
            continue
        assert fresh.sample(model_id, num_samples=10, seed=1).metadata["num_samples"] == 10
    for model in models:  # both were persisted at fit time: an atomic rewrite never loses one
        assert fresh.sample(model, num_samples=10, seed=1).metadata["num_samples"] == 10
    assert fresh.ping() == "pong"


def test_leftover_temporary_files_are_neither_listed_nor_opened_as_models(tmp_path: Path, raw_worker: Any) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / ".tmp-k1ll3d.model").write_bytes(b"SCMW1\n" + b"\0" * 40)  # what a kill mid-write leaves
    worker: RawWorker = raw_worker("--no-warmup", "--store", str(store))
    listing = worker.result("models.list")
    assert listing["models_on_disk"] == 0 and listing["models"] == [], listing
    # nor opened: its name is refused as an id (-32602) before any file is read (-32006 would mean it was)
    reply = worker.call("models.load", {"model_id": ".tmp-k1ll3d"})
    assert reply.get("error", {}).get("code") == -32602, reply
    assert reply["error"]["data"]["field"] == "model_id", reply
