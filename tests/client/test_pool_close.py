"""WorkerPool.close asks every worker to stop first, then reaps them in parallel.

Fake workers that ignore ``shutdown`` make each stop cost a full ``shutdown_timeout``
of waiting for a reply that never comes: one by one, N of them cost N timeouts; asked
together and reaped in parallel, about one.
"""

from __future__ import annotations

import time
from pathlib import Path

import scm_client
from scm_client import State, WorkerPool
from support.procs import pid_alive

TIMEOUT = 1.5
SIZE = 4


def test_pool_close_stops_unresponsive_workers_together_not_one_by_one(
    fake_python: str, pid_file: Path,
) -> None:
    env = {"FAKE_PID_FILE": str(pid_file),
           "FAKE_WORKER_VERSION": scm_client.__version__, "FAKE_NO_SHUTDOWN_REPLY": "1"}
    pool = WorkerPool(SIZE, python=fake_python, env=env, shutdown_timeout=TIMEOUT,
                      start_timeout=10.0)
    pool.start()
    pids = [worker.pid for worker in pool.workers]
    started = time.monotonic()
    pool.close()
    seconds = time.monotonic() - started
    assert all(worker.state is State.CLOSED for worker in pool.workers)
    assert [worker.last_stop for worker in pool.workers] == ["terminated"] * SIZE
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    # one by one would be SIZE × TIMEOUT (6 s) of waiting for replies alone
    assert seconds < (SIZE - 1) * TIMEOUT, f"{seconds:.1f} s: the workers were stopped one by one"


def test_pool_close_of_answering_workers_takes_the_graceful_path(
    fake_python: str, pid_file: Path,
) -> None:
    env = {"FAKE_PID_FILE": str(pid_file),
           "FAKE_WORKER_VERSION": scm_client.__version__}
    with WorkerPool(SIZE, python=fake_python, env=env, shutdown_timeout=TIMEOUT) as pool:
        pool.start()
        pids = [worker.pid for worker in pool.workers]
    assert [worker.last_stop for worker in pool.workers] == ["exited"] * SIZE
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    pool.close()  # idempotent
