"""The client process killed with SIGKILL: no worker and no joblib child may outlive it.

A small 3.13 client script starts a Worker, waits for its warm-up (so joblib's loky
processes exist) and prints the worker's pid; the test kills the script with SIGKILL
(no atexit, no close) and then watches the worker and every descendant. The worker
sees EOF on its stdin, stops its loky pool and exits; the guarantee is that the whole
family is gone within 2 s. A closed Worker leaving no child is
tests/e2e/test_lifecycle.py::test_close_leaves_no_child_process_behind; a worker whose
stdin closes is tests/worker/test_protocol_spec.py::test_stdin_eof_after_warmup_leaves_no_joblib_child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from reliability_support import record_figures
from support.pipes import kill_group
from support.procs import descendants, describe, group_members, pid_alive
from support.worker_env import worker_python

DEADLINE = 2.0

CLIENT = textwrap.dedent("""
    import random
    import sys
    import threading
    import time
    from scm_client import Worker

    mode = sys.argv[1]  # idle | sleeping (debug.sleep 120 s) | fitting (a long fit, once node tasks run)
    flags = ("--no-store", "--no-warmup", "--test-methods") if mode == "sleeping" else ("--no-store",)
    worker = Worker(sys.argv[2], worker_args=flags, start_timeout=300)
    worker.start()
    if mode != "sleeping":
        assert worker.wait_until_warm(timeout=300)  # joblib's processes exist once it is warm
    print("worker", worker.pid, flush=True)
    # a long request, written before the client dies: request() returns once it is sent
    if mode == "sleeping":
        sent, _ = worker._channel.request("debug.sleep", {"seconds": 120})
    if mode == "fitting":  # 8-node chain, 20,000 rows: tens of seconds of node-parallel fitting
        rng, nodes = random.Random(1), [f"v{i}" for i in range(8)]
        traces, parent = {}, [0.0] * 20_000
        for node in nodes:
            traces[node] = parent = [2.0 * p + rng.gauss(0.0, 1.0) for p in parent]
        graph = {"nodes": nodes, "edges": [[a, b] for a, b in zip(nodes, nodes[1:])]}
        nodes_running = threading.Event()  # a node fitted, more to go: joblib's processes at work

        def on_progress(p):
            if p.get("stage") == "fitting" and 1 <= p.get("done", 0) < p.get("total", 0):
                nodes_running.set()

        worker._channel.request("fit", {"graph": graph, "traces": traces, "config": {"validate_r2": False}},
                                on_progress)
        assert nodes_running.wait(300), "the fit never fitted a node"
    if mode == "sleeping":  # until status (a control request, answered at once) shows it running
        deadline = time.monotonic() + 300
        while (worker.call("status")["running"] or {}).get("id") != sent:
            assert time.monotonic() < deadline, "the long request never ran"
            time.sleep(0.01)
    if mode != "idle":
        print("running", flush=True)
    sys.stdin.read()  # until killed
""")


class Family:
    """The client script, and the worker and descendants it reports."""

    def __init__(self, mode: str) -> None:
        self.client = subprocess.Popen([sys.executable, "-c", CLIENT, mode, worker_python()],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.worker: int | None = None
        self.mode = mode

    def wait_ready(self) -> list[int]:
        """Read the client's lines until it is warm (or its long request runs); the family then."""
        assert self.client.stdout is not None
        wanted = "worker" if self.mode == "idle" else "running"
        for line in self.client.stdout:
            if line.startswith("worker"):
                self.worker = int(line.split()[1])
            if line.startswith(wanted) and self.worker is not None:
                break
        else:
            pytest.fail(f"the client script exited early ({self.client.wait()})")
        assert self.worker is not None
        children = descendants(self.worker)
        assert children or self.mode == "sleeping", "the warm worker should have joblib processes"
        return [self.worker, *children]

    def cleanup(self) -> None:
        self.client.kill()
        self.client.wait()
        if self.worker is not None:
            kill_group(self.worker)  # the worker leads its own process group


@pytest.fixture
def family_of() -> Iterator[list[Family]]:
    made: list[Family] = []
    yield made
    for family in made:
        family.cleanup()


def kill_client_and_watch(family: Family, pids: list[int]) -> tuple[float | None, list[str]]:
    """SIGKILL the client; when every pid is gone (None if not by DEADLINE) and what was still alive.

    Watched: the worker and the descendants it had, and anything else in the worker's process
    group at the deadline (a joblib process started after the list was taken, already orphaned).
    Each survivor is described while it is still alive: state, parent, threads, the kernel
    function it waits in, its command line.
    """
    worker = family.worker
    assert worker is not None
    roles = {pid: "the worker" if pid == worker else "a child of the worker" for pid in pids}
    killed = time.monotonic()
    os.kill(family.client.pid, signal.SIGKILL)
    family.client.wait()
    gone_at: dict[int, float] = {}
    while time.monotonic() - killed < DEADLINE:
        for pid in pids:
            if pid not in gone_at and not pid_alive(pid):
                gone_at[pid] = time.monotonic() - killed
        if len(gone_at) == len(pids):
            break
        time.sleep(0.01)
    late = [pid for pid in group_members(worker) if pid not in roles]  # the worker leads its group
    roles.update(dict.fromkeys(late, "in the worker's process group, started after the list was taken"))
    survivors = [f"{roles[pid]}, {describe(pid)}" for pid in [*pids, *late] if pid not in gone_at and pid_alive(pid)]
    elapsed = time.monotonic() - killed
    all_gone = max(gone_at.values(), default=0.0) if not survivors else None
    return all_gone, [f"{elapsed:.2f}s after the kill: {s}" for s in survivors]


def test_client_killed_leaves_no_worker_and_no_joblib_child_after_2s(family_of: list[Family]) -> None:
    family = Family("idle")
    family_of.append(family)
    pids = family.wait_ready()
    all_gone, survivors = kill_client_and_watch(family, pids)
    assert not survivors, f"still alive {DEADLINE}s after the client was killed:\n" + "\n".join(survivors)
    assert all_gone is not None and all_gone <= DEADLINE
    print(f"worker and {len(pids) - 1} children gone {all_gone:.2f}s after the client was killed")
    record_figures("client_killed_idle", children=len(pids) - 1, gone_s=round(all_gone, 2))


@pytest.mark.parametrize("mode", ["sleeping", "fitting"])
def test_client_killed_during_a_long_request_leaves_no_worker_after_2s(family_of: list[Family], mode: str) -> None:
    # Was a gap: the worker noticed a dead client only at its next stdin read or stdout write, 25 s
    # after the kill for this fit. Its lifeline thread now sees the closed stdout pipe at once.
    family = Family(mode)
    family_of.append(family)
    pids = family.wait_ready()  # the long request runs
    all_gone, survivors = kill_client_and_watch(family, pids)
    assert not survivors, f"still alive {DEADLINE}s after the client was killed mid-request:\n" + "\n".join(survivors)
    print(f"{mode}: worker and {len(pids) - 1} children gone {all_gone:.2f}s after the client was killed")
    assert all_gone is not None
    record_figures(f"client_killed_{mode}", children=len(pids) - 1, gone_s=round(all_gone, 2))
