"""The client's process and channel handling against a misbehaving fake worker.

The fake (tests/client/fake_worker.py) runs through the client's own spawn path, so
every test here exercises Worker, Channel and _process for real; only the worker on
the other end of the pipes is a stand-in.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.calls import call_in_thread, join, pending_calls
from support.procs import pid_alive, wait_until
from scm_client import (
    InvalidParams,
    MethodNotFound,
    ProtocolError,
    RemoteError,
    State,
    ValidationFailed,
    Worker,
    WorkerClosed,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from scm_client._channel import Channel

MakeFake = Callable[..., Worker]


def read_pids(pid_file: Path) -> list[int]:
    return [int(line) for line in pid_file.read_text().split()] if pid_file.exists() else []


# -- starting ------------------------------------------------------------------------------


def test_fake_package_shadows_the_real_worker(make_fake: MakeFake) -> None:
    worker = make_fake()
    info = worker.start()
    assert info["fake"] is True and info["protocol_version"] == 1
    assert info["pid"] == worker.pid
    assert worker.state is State.RUNNING and worker.starts == 1
    assert worker.ping() == "pong"


def test_worker_that_exits_before_the_handshake_is_a_start_error_with_its_stderr(
    make_fake: MakeFake, pid_file: Path
) -> None:
    worker = make_fake(FAKE_FAIL_ON_START=1)
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    assert "handshake failed" in str(caught.value)
    assert "refusing to start: FAKE_FAIL_ON_START is set" in caught.value.stderr_tail
    assert "refusing to start" in str(caught.value)
    assert worker.state is State.NOT_STARTED
    [pid] = read_pids(pid_file)
    assert not pid_alive(pid)


def test_slow_start_within_the_start_timeout_succeeds(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_STARTUP_DELAY=0.5, start_timeout=10)
    assert worker.start()["fake"] is True
    assert worker.ping() == "pong"


def test_handshake_timeout_kills_the_silent_worker(make_fake: MakeFake, pid_file: Path) -> None:
    worker = make_fake(FAKE_STARTUP_DELAY=60, start_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    assert time.monotonic() - started < 8
    assert "timed out" in str(caught.value)
    [pid] = read_pids(pid_file)
    assert not pid_alive(pid)


def test_protocol_version_mismatch_is_a_start_error(make_fake: MakeFake, pid_file: Path) -> None:
    worker = make_fake(FAKE_PROTOCOL_VERSION=99)
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    message = str(caught.value)
    assert "protocol mismatch" in message and "99" in message
    [pid] = read_pids(pid_file)
    assert not pid_alive(pid)


def test_garbage_before_the_handshake_is_a_start_error(make_fake: MakeFake, pid_file: Path) -> None:
    worker = make_fake(FAKE_GARBAGE_ON_START=1)
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    assert "not JSON" in str(caught.value)
    [pid] = read_pids(pid_file)
    assert not pid_alive(pid)


def test_missing_interpreter_is_a_start_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-python"
    with Worker(python=str(missing)) as worker, pytest.raises(WorkerStartError) as caught:
        worker.ping()
    assert str(missing) in str(caught.value)


# -- replies -------------------------------------------------------------------------------


def test_remote_errors_become_their_subclass(make_fake: MakeFake) -> None:
    worker = make_fake()
    with pytest.raises(MethodNotFound):
        worker.call("no.such.method")
    data = {
        "r2_scores": {"Y": 0.2},
        "mean_r2": 0.2,
        "threshold": 0.7,
        "failed_nodes": ["Y"],
        "model_id": "m1",
    }
    with pytest.raises(ValidationFailed) as caught:
        worker.call("error", {"code": -32001, "message": "R² too low", "data": data})
    assert caught.value.failed_nodes == ["Y"] and caught.value.model_id == "m1"
    with pytest.raises(InvalidParams) as invalid:
        worker.call(
            "error", {"code": -32602, "message": "bad", "data": {"field": "x", "reason": "why"}}
        )
    assert invalid.value.field == "x"
    with pytest.raises(RemoteError) as unknown:
        worker.call("error", {"code": -32099, "message": "new in a later worker"})
    assert type(unknown.value) is RemoteError and unknown.value.code == -32099
    assert worker.ping() == "pong" and worker.starts == 1


def test_reply_without_result_or_error_fails_only_that_call(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    pid = worker.pid
    with pytest.raises(ProtocolError):
        worker.call("no_result")
    assert worker.ping() == "pong"
    assert worker.pid == pid and worker.starts == 1


def test_reply_for_an_unknown_id_is_ignored(make_fake: MakeFake) -> None:
    worker = make_fake()
    assert worker.call("stray") == "ok"
    assert worker.ping() == "pong" and worker.starts == 1


def test_reply_inside_an_array_reaches_its_caller(make_fake: MakeFake) -> None:
    worker = make_fake()
    assert worker.call("batch_reply") == "in a batch"


def test_replies_out_of_order_reach_their_own_callers(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    calls = {
        value: call_in_thread(worker, "defer", {"value": value}) for value in ("a", "b", "c", "d")
    }
    # the client registers a call before it writes the line: wait on what the fake has read
    wait_until(lambda: worker.call("deferred") == 4, 10, "the fake to hold four deferred calls")
    assert worker.call("flush") == "flushed"  # the fake answers newest first
    for value, (thread, outcome) in calls.items():
        join(thread)
        assert outcome == [value]


def test_params_and_results_round_trip(make_fake: MakeFake) -> None:
    worker = make_fake()
    params = {
        "text": 'ü ✓ "quoted"\nnewline',
        "n": 2**60,
        "x": -0.125,
        "none": None,
        "list": [True, False],
    }
    assert worker.call("echo", params) == params
    assert worker.call("echo", [1, "two", 3.0]) == [1, "two", 3.0]


def test_nan_in_params_never_leaves_the_client(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    with pytest.raises((ValueError, InvalidParams)):
        worker.call("echo", {"x": float("nan")})
    assert pending_calls(worker) == 0
    assert worker.ping() == "pong" and worker.starts == 1


def test_progress_notifications_reach_on_progress(make_fake: MakeFake) -> None:
    seen: list[dict[str, Any]] = []
    worker = make_fake(on_progress=seen.append)
    assert worker.call("progress") == "done"
    assert len(seen) == 1
    assert seen[0]["stage"] == "fit" and seen[0]["done"] == 1 and seen[0]["total"] == 2
    assert isinstance(seen[0]["request_id"], int)


def test_failing_progress_callback_does_not_break_the_channel(make_fake: MakeFake) -> None:
    def explode(params: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    worker = make_fake(on_progress=explode)
    assert worker.call("progress") == "done"
    assert worker.ping() == "pong"


def test_many_threads_share_one_worker(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    wrong: list[str] = []

    def run(t: int) -> None:
        for i in range(50):
            payload = {"thread": t, "call": i}
            try:
                got = worker.call("echo", payload, timeout=20)
            except Exception as exc:  # noqa: BLE001 - reported below
                wrong.append(repr(exc))
                continue
            if got != payload:
                wrong.append(f"sent {payload}, got {got}")

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        join(thread, timeout=30)
    assert wrong == []
    assert worker.starts == 1


# -- protocol corruption -------------------------------------------------------------------


def test_garbage_line_fails_every_pending_call_with_protocol_error(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_GARBAGE_STDOUT=1)
    worker.start()
    old = worker.pid
    assert old is not None
    stalled = [call_in_thread(worker, "stall") for _ in range(2)]
    wait_until(lambda: pending_calls(worker) == 2, 10, "two stalled calls in flight")
    with pytest.raises(ProtocolError, match="not JSON"):
        worker.ping()
    for thread, outcome in stalled:
        join(thread)
        assert len(outcome) == 1 and isinstance(outcome[0], ProtocolError), outcome
    assert worker.state is State.CRASHED
    # the corrupt worker is replaced on the next call
    assert worker.call("echo", {"after": "garbage"}) == {"after": "garbage"}
    assert worker.pid != old and worker.starts == 2
    assert not pid_alive(old)


def test_json_line_that_is_not_a_message_is_a_protocol_error(make_fake: MakeFake) -> None:
    worker = make_fake()
    with pytest.raises(ProtocolError, match="not a message"):
        worker.call("not_a_message")
    assert worker.ping() == "pong"
    assert worker.starts == 2


def test_stderr_flood_does_not_deadlock(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_STDERR_FLOOD=8)
    started = time.monotonic()
    assert worker.call("ping", timeout=30) == "pong"
    assert time.monotonic() - started < 30
    channel = worker._channel
    assert channel is not None
    wait_until(
        lambda: "flood done" in channel.stderr_tail(), 10, "the end of the flood in the stderr tail"
    )
    assert len(channel.stderr_tail().splitlines()) <= 200  # the tail stays bounded


# -- crashes, timeouts, restarts -----------------------------------------------------------


def test_crash_fails_the_call_with_exit_code_and_stderr_and_the_next_call_restarts(
    make_fake: MakeFake,
) -> None:
    worker = make_fake()
    worker.start()
    old = worker.pid
    with pytest.raises(WorkerCrashed) as caught:
        worker.call("exit", {"code": 7})
    assert caught.value.exit_code == 7
    assert "exiting with code 7 as asked" in caught.value.stderr_tail
    assert "(exit code 7)" in str(caught.value)
    assert worker.state is State.CRASHED
    assert worker.ping() == "pong"
    assert worker.pid != old and worker.starts == 2
    assert worker.state is State.RUNNING


def test_every_pending_call_gets_worker_crashed(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    stalled = [call_in_thread(worker, "stall") for _ in range(3)]
    wait_until(lambda: pending_calls(worker) == 3, 10, "three stalled calls in flight")
    with pytest.raises(WorkerCrashed):
        worker.call("exit", {"code": 9})
    for thread, outcome in stalled:
        join(thread)
        assert (
            len(outcome) == 1
            and isinstance(outcome[0], WorkerCrashed)
            and outcome[0].exit_code == 9
        )


def test_timeout_kills_and_next_call_restarts(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    old = worker.pid
    assert old is not None
    started = time.monotonic()
    with pytest.raises(WorkerTimeout) as caught:
        worker.call("stall", timeout=0.3)
    assert time.monotonic() - started < 5
    assert caught.value.method == "stall" and caught.value.timeout == 0.3
    assert not pid_alive(old)
    assert worker.ping() == "pong"
    assert worker.pid != old and worker.starts == 2


def test_timeout_fails_the_other_pending_calls_too(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    other, outcome = call_in_thread(worker, "stall")
    wait_until(lambda: pending_calls(worker) == 1, 10, "a stalled call in flight")
    with pytest.raises(WorkerTimeout):
        worker.call("stall", timeout=0.3)
    join(other)
    assert len(outcome) == 1 and isinstance(outcome[0], WorkerCrashed)
    assert "timed out" in str(outcome[0])


def test_request_timeout_is_the_default_and_an_explicit_timeout_overrides_it(
    make_fake: MakeFake,
) -> None:
    worker = make_fake(request_timeout=0.3)
    with pytest.raises(WorkerTimeout):
        worker.call("stall")
    assert worker.call("sleep", {"seconds": 0.6}, timeout=10) == 0.6


def test_max_restarts_gives_up_after_crashes_without_a_success_between(make_fake: MakeFake) -> None:
    worker = make_fake(max_restarts=2)
    for code in (1, 2, 3):  # the first start, then restarts 1 and 2, each crashing at once
        with pytest.raises(WorkerCrashed):
            worker.call("exit", {"code": code})
    assert worker.starts == 3
    with pytest.raises(WorkerStartError, match="3 times in a row"):
        worker.ping()
    assert worker.starts == 3
    assert worker.state is State.CRASHED


def test_a_successful_call_resets_the_restart_count(make_fake: MakeFake) -> None:
    worker = make_fake(max_restarts=1)
    for _ in range(4):
        with pytest.raises(WorkerCrashed):
            worker.call("exit", {"code": 1})
        assert worker.ping() == "pong"
    assert worker.starts == 5


def test_a_remote_error_counts_as_a_success(make_fake: MakeFake) -> None:
    worker = make_fake(max_restarts=1)
    for _ in range(3):
        with pytest.raises(WorkerCrashed):
            worker.call("exit", {"code": 1})
        with pytest.raises(MethodNotFound):
            worker.call("no.such.method")
    assert worker.starts == 4  # every crash was followed by a restart


def test_crash_retries_send_a_crashed_call_again_on_the_restarted_worker(
        make_fake: MakeFake, tmp_path: Path) -> None:
    """The one retry policy of the client (WorkerPool and compat use it): the call itself
    gets the restarted worker's answer, not the crash."""
    worker = make_fake(crash_retries=1)
    assert worker.call("exit_once", {"marker": str(tmp_path / "crashed")}) == "after a crash"
    assert (worker.starts, worker.retries) == (2, 1)
    with pytest.raises(WorkerCrashed):  # a crash every time: sent twice, then raised
        worker.call("exit", {"code": 1})
    assert (worker.starts, worker.retries) == (3, 2)


def test_without_crash_retries_and_for_a_submitted_call_the_crash_is_raised(
        make_fake: MakeFake, tmp_path: Path) -> None:
    with pytest.raises(WorkerCrashed):
        make_fake().call("exit_once", {"marker": str(tmp_path / "a")})
    retrying = make_fake(crash_retries=1)
    pending = retrying.submit("exit_once", {"marker": str(tmp_path / "b")})
    with pytest.raises(WorkerCrashed):  # a handle is one request: its crash is the caller's
        pending.result(timeout=10)
    assert retrying.retries == 0


def test_a_failed_restart_counts_toward_max_restarts(make_fake: MakeFake) -> None:
    worker = make_fake(max_restarts=1)
    with pytest.raises(WorkerCrashed):
        worker.call("exit", {"code": 1})
    worker.env["FAKE_FAIL_ON_START"] = "1"
    with pytest.raises(WorkerStartError, match="handshake failed"):
        worker.ping()
    del worker.env["FAKE_FAIL_ON_START"]
    with pytest.raises(WorkerStartError, match="giving up"):
        worker.ping()
    assert worker.starts == 2


def test_max_restarts_zero_never_restarts(make_fake: MakeFake) -> None:
    worker = make_fake(max_restarts=0)
    with pytest.raises(WorkerCrashed):
        worker.call("exit", {"code": 1})
    with pytest.raises(WorkerStartError):
        worker.ping()
    assert worker.starts == 1


# -- closing -------------------------------------------------------------------------------


def test_close_after_shutdown_reply_is_exited(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert worker.last_stop == "exited"
    assert not pid_alive(pid)


def test_close_is_idempotent_and_calls_after_it_raise_worker_closed(make_fake: MakeFake) -> None:
    worker = make_fake()
    worker.start()
    worker.close()
    worker.close()
    assert worker.state is State.CLOSED and worker.last_stop == "exited"
    with pytest.raises(WorkerClosed):
        worker.ping()
    with pytest.raises(WorkerClosed):
        worker.start()


def test_close_terminates_a_worker_that_ignores_shutdown(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_NO_SHUTDOWN_REPLY=1, shutdown_timeout=0.5)
    worker.start()
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert worker.last_stop == "terminated"
    assert not pid_alive(pid)


def test_close_terminates_a_worker_that_answers_shutdown_but_lingers(make_fake: MakeFake) -> None:
    worker = make_fake(FAKE_LINGER_AFTER_SHUTDOWN=1, shutdown_timeout=0.5)
    worker.start()
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert worker.last_stop == "terminated"
    assert not pid_alive(pid)


def test_close_escalates_to_sigkill_when_shutdown_and_sigterm_are_ignored(
    make_fake: MakeFake,
) -> None:
    worker = make_fake(FAKE_NO_SHUTDOWN_REPLY=1, FAKE_IGNORE_SIGTERM=1, shutdown_timeout=0.5)
    worker.start()
    pid = worker.pid
    assert pid is not None
    started = time.monotonic()
    worker.close()
    assert worker.last_stop == "killed"
    assert time.monotonic() - started < 8
    assert not pid_alive(pid)
    assert worker.state is State.CLOSED


def test_close_of_a_crashed_worker_is_already_dead(make_fake: MakeFake) -> None:
    worker = make_fake()
    with pytest.raises(WorkerCrashed):
        worker.call("exit", {"code": 4})
    worker.close()
    assert worker.last_stop == "already_dead"


def test_context_manager_closes(make_fake: MakeFake) -> None:
    with make_fake() as worker:
        worker.start()
        pid = worker.pid
    assert worker.state is State.CLOSED and worker.last_stop == "exited"
    assert pid is not None and not pid_alive(pid)


def test_stderr_lines_are_logged(make_fake: MakeFake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="scm_client.worker")
    worker = make_fake()
    worker.start()
    pid = worker.pid
    wait_until(
        lambda: any(
            re.search(rf"fake-worker\[{pid}\] starting", r.getMessage()) for r in caplog.records
        ),
        10,
        "the fake's first stderr line in the log",
    )


# -- a worker that is gone before the channel reads ----------------------------------------


def test_pending_call_fails_when_the_worker_died_before_the_channel_started() -> None:
    """Regression: the reader used to start before the stderr drainer and, on an instant EOF,
    died joining the unstarted drainer; the pending call then never got WorkerCrashed."""
    unhandled: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: unhandled.append(args.exc_value)
    try:
        for _ in range(5):
            # sh exits at once (stdout EOF, exit code 3) while a background child keeps the
            # read end of its stdin open, so writing the request still succeeds
            proc = subprocess.Popen(
                ["/bin/sh", "-c", "exec 3<&0; sleep 30 </dev/null >/dev/null 2>&1 & exit 3"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            try:
                assert proc.wait(timeout=10) == 3
                channel = Channel(proc)
                with pytest.raises(WorkerCrashed) as caught:
                    _, future = channel.request("ping")
                    future.result(timeout=5)
                assert caught.value.exit_code == 3
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the background sleep
                except ProcessLookupError:
                    pass
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    assert stream is not None
                    try:
                        stream.close()
                    except OSError:
                        pass
        assert unhandled == []
    finally:
        threading.excepthook = previous_hook
