"""Worker lifecycle end to end: the 3.13 client, the real 3.11 worker, real pipes.

Handshake, errors as exceptions, crashes and restarts, timeouts, the restart limit,
concurrency, closing (and what close leaves behind), and stdout protection. Only the
orphan test pays for DoWhy's warm-up fit; every other worker runs with --no-warmup.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
from support.calls import call_in_thread, join, pending_calls
from support.procs import descendants, pid_alive, wait_until
from scm_client import (
    InternalError,
    InvalidParams,
    MethodNotFound,
    RemoteError,
    State,
    Worker,
    WorkerClosed,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)

MakeWorker = Callable[..., Worker]


# -- handshake and calls -------------------------------------------------------------------


def test_start_handshakes_and_reports_the_worker(worker: Worker) -> None:
    assert worker.state is State.NOT_STARTED
    info = worker.start()
    assert info["protocol_version"] == 1
    assert info["python_version"].startswith("3.11")
    assert info["pid"] == worker.pid
    assert "debug.sleep" in info["methods"]
    assert worker.state is State.RUNNING
    assert worker.starts == 1
    assert worker.info is info


def test_first_call_starts_the_worker_lazily(worker: Worker) -> None:
    assert worker.pid is None
    assert worker.ping() == "pong"
    assert worker.state is State.RUNNING and worker.starts == 1


def test_ping(worker: Worker) -> None:
    assert worker.ping() == "pong"
    assert worker.call("ping") == "pong"


def test_unknown_method_raises_method_not_found(worker: Worker) -> None:
    with pytest.raises(MethodNotFound) as caught:
        worker.call("no.such.method")
    assert caught.value.code == -32601
    assert worker.ping() == "pong"  # the worker kept serving: no restart
    assert worker.starts == 1


def test_bad_param_raises_invalid_params_naming_the_field(worker: Worker) -> None:
    with pytest.raises(InvalidParams) as caught:
        worker.call("debug.sleep", {"seconds": "x"})
    assert caught.value.code == -32602
    assert caught.value.field == "seconds"
    assert caught.value.reason and "number" in caught.value.reason
    with pytest.raises(InvalidParams) as caught:
        worker.call("debug.sleep", {"seconds": 0, "nap": True})
    assert caught.value.field == "nap"
    assert worker.starts == 1


def test_handler_exception_raises_internal_error_and_the_worker_survives(worker: Worker) -> None:
    with pytest.raises(InternalError) as caught:
        worker.call("debug.raise", {"message": "kaboom"})
    assert isinstance(caught.value, RemoteError)
    assert caught.value.data == {"type": "RuntimeError"}
    assert worker.ping() == "pong"
    assert worker.starts == 1


# -- crashes and restarts ------------------------------------------------------------------


def test_crash_raises_worker_crashed_and_the_next_call_restarts(worker: Worker) -> None:
    worker.start()
    first_pid = worker.pid
    worker.call("debug.print", {"text": "last-words-before-exit", "target": "stderr"})
    with pytest.raises(WorkerCrashed) as caught:
        worker.call("debug.exit", {"code": 7})
    assert caught.value.exit_code == 7
    assert "last-words-before-exit" in caught.value.stderr_tail
    assert worker.state is State.CRASHED
    assert worker.ping() == "pong"
    assert worker.starts == 2
    assert worker.pid != first_pid
    assert worker.state is State.RUNNING


def test_every_pending_call_gets_worker_crashed_when_the_worker_is_killed(worker: Worker) -> None:
    worker.start()
    victim = worker.pid
    assert victim is not None
    calls = [call_in_thread(worker, "debug.sleep", {"seconds": 60}) for _ in range(3)]
    wait_until(lambda: pending_calls(worker) == 3, 10, "three calls in flight")
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    for thread, outcome in calls:
        join(thread)
        assert len(outcome) == 1 and isinstance(outcome[0], WorkerCrashed), outcome
        assert outcome[0].exit_code == -signal.SIGKILL
    assert time.monotonic() - started < 10
    assert worker.ping() == "pong"
    assert worker.pid != victim and worker.starts == 2


def test_timeout_kills_and_next_call_restarts(make_worker: MakeWorker) -> None:
    worker = make_worker(cancel_grace=0)  # no cancellation: the kill path (the cancel path: test_daemon.py)
    worker.start()
    old = worker.pid
    assert old is not None
    started = time.monotonic()
    with pytest.raises(WorkerTimeout) as caught:
        worker.call("debug.sleep", {"seconds": 10}, timeout=0.5)
    assert time.monotonic() - started < 5
    assert caught.value.method == "debug.sleep" and caught.value.timeout == 0.5
    assert not pid_alive(old)
    assert worker.ping() == "pong"
    assert worker.pid != old
    assert worker.starts == 2


def test_request_timeout_applies_to_every_call(make_worker: MakeWorker) -> None:
    worker = make_worker(request_timeout=0.5)
    assert worker.ping() == "pong"
    with pytest.raises(WorkerTimeout):
        worker.call("debug.sleep", {"seconds": 10})
    # an explicit timeout overrides the default
    assert worker.call("debug.sleep", {"seconds": 0.7}, timeout=10) == 0.7


def test_max_restarts_gives_up_after_crashes_without_a_success_between(
    make_worker: MakeWorker,
) -> None:
    worker = make_worker(max_restarts=1)
    worker.start()
    with pytest.raises(WorkerCrashed):
        worker.call("debug.exit", {"code": 3})
    # restart 1 of 1: the handshake succeeds, but no call does before the next crash
    with pytest.raises(WorkerCrashed):
        worker.call("debug.exit", {"code": 4})
    assert worker.starts == 2
    with pytest.raises(WorkerStartError) as caught:
        worker.ping()
    assert "max_restarts=1" in str(caught.value)
    assert worker.starts == 2  # gave up without spawning
    with pytest.raises(WorkerStartError):
        worker.ping()  # and stays given up
    assert worker.state is State.CRASHED


def test_a_successful_call_resets_the_restart_count(make_worker: MakeWorker) -> None:
    worker = make_worker(max_restarts=1)
    for _ in range(3):
        with pytest.raises(WorkerCrashed):
            worker.call("debug.exit", {"code": 3})
        assert worker.ping() == "pong"  # a restart, then a success
    assert worker.starts == 4


def test_max_restarts_zero_never_restarts(make_worker: MakeWorker) -> None:
    worker = make_worker(max_restarts=0)
    with pytest.raises(WorkerCrashed):
        worker.call("debug.exit", {"code": 5})
    with pytest.raises(WorkerStartError):
        worker.ping()
    assert worker.starts == 1


# -- concurrency ---------------------------------------------------------------------------


def test_eight_threads_sharing_one_worker_each_get_their_own_replies(worker: Worker) -> None:
    threads, calls_per_thread = 8, 50
    worker.start()
    barrier = threading.Barrier(threads)
    wrong: list[str] = []
    done = [0] * threads

    def run(t: int) -> None:
        barrier.wait()
        for i in range(calls_per_thread):
            k = t * calls_per_thread + i
            try:
                if k % 3 == 0:
                    seconds = k * 1e-6
                    got = worker.call("debug.sleep", {"seconds": seconds}, timeout=30)
                    if got != seconds:
                        wrong.append(f"thread {t} call {i}: sent {seconds!r}, got {got!r}")
                elif k % 3 == 1:
                    got = worker.call("ping", timeout=30)
                    if got != "pong":
                        wrong.append(f"thread {t} call {i}: ping got {got!r}")
                else:
                    got = worker.call(
                        "debug.print", {"text": f"t{t}-c{i}", "target": "stderr"}, timeout=30
                    )
                    if got != "stderr":
                        wrong.append(f"thread {t} call {i}: print got {got!r}")
            except Exception as exc:  # noqa: BLE001 - reported below
                wrong.append(f"thread {t} call {i}: {exc!r}")
            done[t] += 1

    pool = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        join(thread, timeout=60)
    assert wrong == []
    assert done == [calls_per_thread] * threads
    assert worker.starts == 1
    assert pending_calls(worker) == 0


# -- closing -------------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_raise_worker_closed(worker: Worker) -> None:
    worker.start()
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert worker.state is State.CLOSED
    assert worker.last_stop == "exited"
    assert not pid_alive(pid)
    worker.close()
    assert worker.state is State.CLOSED and worker.last_stop == "exited"
    with pytest.raises(WorkerClosed):
        worker.ping()
    with pytest.raises(WorkerClosed):
        worker.start()


def test_close_of_a_never_started_worker_starts_nothing(worker: Worker) -> None:
    worker.close()
    assert worker.state is State.CLOSED
    assert worker.starts == 0 and worker.last_stop is None
    with pytest.raises(WorkerClosed):
        worker.ping()


def test_context_manager_closes(make_worker: MakeWorker) -> None:
    with make_worker() as worker:
        worker.start()
        pid = worker.pid
    assert worker.state is State.CLOSED and worker.last_stop == "exited"
    assert pid is not None and not pid_alive(pid)


def test_close_after_a_crash_reports_already_dead(worker: Worker) -> None:
    with pytest.raises(WorkerCrashed):
        worker.call("debug.exit", {"code": 2})
    worker.close()
    assert worker.last_stop == "already_dead"


def test_shutdown_stuck_behind_a_busy_worker_is_escalated(make_worker: MakeWorker) -> None:
    worker = make_worker(shutdown_timeout=1)
    worker.start()
    pid = worker.pid
    assert pid is not None
    thread, outcome = call_in_thread(worker, "debug.sleep", {"seconds": 60})
    # running in the worker, not only registered by the client: a shutdown written first would be clean
    wait_until(lambda: (worker.call("status")["running"] or {}).get("method") == "debug.sleep", 10,
               "the sleep to be running in the worker")
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 10
    assert worker.last_stop in ("terminated", "killed")
    assert not pid_alive(pid)
    join(thread)
    assert len(outcome) == 1 and isinstance(outcome[0], WorkerCrashed), outcome


def test_close_leaves_no_child_process_behind(make_worker: MakeWorker) -> None:
    # with the warm-up fit, joblib's loky pool (and its resource trackers) are running
    worker = make_worker(worker_args=("--test-methods", "--no-store"), start_timeout=120)
    worker.start()
    deadline = time.monotonic() + 120
    while not worker.call("initialize", timeout=30)["warm"]:
        assert time.monotonic() < deadline, "warm-up did not finish within 120 s"
        time.sleep(0.2)
    pid = worker.pid
    assert pid is not None
    family = descendants(pid)
    assert family, "the warm-up fit should have started joblib worker processes"
    worker.close()
    assert worker.last_stop == "exited"
    wait_until(
        lambda: not any(pid_alive(p) for p in [pid, *family]),
        5,
        "the worker and its children to exit",
    )


# -- stdout protection ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["fd1", "sys.stdout"])
def test_printing_to_stdout_in_the_worker_lands_in_the_stderr_tail(
    worker: Worker, target: str
) -> None:
    marker = f'{{"jsonrpc":"2.0","result":"forged","id":2}} printed via {target}'
    assert worker.call("debug.print", {"text": marker, "target": target}) == target
    assert worker.ping() == "pong"
    assert worker.call("debug.sleep", {"seconds": 0.25}) == 0.25
    channel = worker._channel
    assert channel is not None
    wait_until(lambda: marker in channel.stderr_tail(), 10, "the printed text in the stderr tail")
    assert worker.starts == 1
