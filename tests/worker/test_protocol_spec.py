"""The line protocol against the JSON-RPC 2.0 specification, on the real worker process.

Section 7 of https://www.jsonrpc.org/specification gives examples with ``subtract``,
``update``, ``sum`` … which the worker does not have: each is replayed here with a
method that exists (``ping``, ``debug.sleep`` echoes its seconds, ``debug.print``
returns its target) and, where the example needs a missing method, one that does not.

"No reply" is always proven positively: the silent message is followed by a ping whose
reply must be the very next line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from support.procs import descendants, pid_alive, wait_until

if TYPE_CHECKING:
    from conftest import WorkerProcess  # type only: two suites' conftests share the module name

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
LIMIT_EXCEEDED = -32004

Spawn = Callable[..., "WorkerProcess"]


def error_of(reply: dict[str, Any], code: int, id_: Any = None) -> dict[str, Any]:
    """Assert ``reply`` is a well-formed error response with ``code`` and ``id``."""
    assert set(reply) == {"jsonrpc", "error", "id"}, reply
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == id_ and type(reply["id"]) is type(id_), reply
    error = reply["error"]
    assert error["code"] == code, reply
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "data"}
    return error


def assert_next_line_is_ping_reply(worker: WorkerProcess) -> None:
    """Send a ping with a fresh id: the next line must be exactly its reply."""
    id_ = worker.next_id()
    worker.send({"jsonrpc": "2.0", "method": "ping", "id": id_})
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": id_}


def unordered(replies: list[dict[str, Any]]) -> list[str]:
    """A batch's replies may come in any order (spec §6): compare as a sorted multiset."""
    return sorted(json.dumps(r, sort_keys=True) for r in replies)


# -- §7 examples ---------------------------------------------------------------------------


def test_call_with_positional_params(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "debug.sleep", "params": [0.002], "id": 1}\n')
    assert worker.read_json() == {"jsonrpc": "2.0", "result": 0.002, "id": 1}
    worker.send_raw(
        b'{"jsonrpc": "2.0", "method": "debug.print", "params": ["positional", "stderr"], "id": 2}\n'
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "stderr", "id": 2}


def test_call_with_named_params_in_any_order(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}
    worker.send_raw(
        b'{"jsonrpc": "2.0", "method": "debug.sleep", "params": {"seconds": 0.003}, "id": 3}\n'
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": 0.003, "id": 3}
    worker.send_raw(
        b'{"jsonrpc": "2.0", "method": "debug.print", "params": {"target": "stderr", "text": "named"}, "id": 4}\n'
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "stderr", "id": 4}
    worker.send_raw(
        b'{"jsonrpc": "2.0", "method": "debug.print", "params": {"text": "named", "target": "stderr"}, "id": 5}\n'
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "stderr", "id": 5}


def test_notification_writes_nothing(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "ping"}\n')
    assert_next_line_is_ping_reply(worker)


def test_notification_is_executed_though_nothing_is_written(worker: WorkerProcess) -> None:
    marker = f"notified-{time.monotonic_ns()}"
    worker.send({"jsonrpc": "2.0", "method": "debug.print", "params": [marker, "stderr"]})
    assert_next_line_is_ping_reply(worker)
    worker.wait_for_stderr(marker)


def test_notification_to_a_missing_method_writes_nothing(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "foobar"}
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "foobar"}\n')
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "update", "params": [1, 2, 3, 4, 5]}\n')
    assert_next_line_is_ping_reply(worker)


@pytest.mark.parametrize(
    "params",
    [{"seconds": "x"}, {"bogus": 1}, None],
    ids=["bad-value", "unknown-param", "missing-param"],
)
def test_failing_notification_writes_nothing(worker: WorkerProcess, params: Any) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": "debug.sleep"}
    if params is not None:
        message["params"] = params
    worker.send(message)
    worker.send({"jsonrpc": "2.0", "method": "debug.raise", "params": {"message": "quiet"}})
    assert_next_line_is_ping_reply(worker)


def test_call_to_a_missing_method_is_method_not_found(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "foobar", "id": "1"}
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "foobar", "id": "1"}\n')
    error_of(worker.read_json(), METHOD_NOT_FOUND, "1")


def test_invalid_json_is_parse_error_with_null_id(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]
    worker.send_raw(b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]\n')
    error_of(worker.read_json(), PARSE_ERROR, None)
    assert_next_line_is_ping_reply(worker)


def test_invalid_request_object_is_invalid_request_with_null_id(worker: WorkerProcess) -> None:
    # --> {"jsonrpc": "2.0", "method": 1, "params": "bar"}
    worker.send_raw(b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}\n')
    error_of(worker.read_json(), INVALID_REQUEST, None)


def test_batch_with_invalid_json_is_a_single_parse_error(worker: WorkerProcess) -> None:
    worker.send_raw(
        b'[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        + b'{"jsonrpc": "2.0", "method"'
        + b"]\n"
    )
    reply = worker.read_json()
    assert isinstance(reply, dict), f"a parse error is one object, not an array: {reply}"
    error_of(reply, PARSE_ERROR, None)


def test_empty_array_is_a_single_invalid_request(worker: WorkerProcess) -> None:
    worker.send_raw(b"[]\n")
    reply = worker.read_json()
    assert isinstance(reply, dict), f"an empty batch gets one object, not an array: {reply}"
    error_of(reply, INVALID_REQUEST, None)


def test_batch_of_one_non_object_is_an_array_of_one_invalid_request(worker: WorkerProcess) -> None:
    worker.send_raw(b"[1]\n")
    reply = worker.read_json()
    assert isinstance(reply, list) and len(reply) == 1, reply
    error_of(reply[0], INVALID_REQUEST, None)


def test_batch_of_three_non_objects_is_an_array_of_three_invalid_requests(
    worker: WorkerProcess,
) -> None:
    worker.send_raw(b"[1,2,3]\n")
    reply = worker.read_json()
    assert isinstance(reply, list) and len(reply) == 3, reply
    for item in reply:
        error_of(item, INVALID_REQUEST, None)


def test_mixed_batch_answers_every_call_but_no_notification(worker: WorkerProcess) -> None:
    marker = f"batch-notification-{time.monotonic_ns()}"
    batch = [
        {"jsonrpc": "2.0", "method": "debug.sleep", "params": [0.001], "id": "1"},  # sum
        {"jsonrpc": "2.0", "method": "debug.print", "params": [marker, "stderr"]},  # notify_hello
        {
            "jsonrpc": "2.0",
            "method": "debug.sleep",
            "params": {"seconds": 0.002},
            "id": "2",
        },  # subtract
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "ping", "id": "9"},  # get_data
    ]
    worker.send(batch)
    reply = worker.read_json()
    assert isinstance(reply, list) and len(reply) == 5, reply
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for item in reply:
        by_id.setdefault(item["id"], []).append(item)
    assert by_id["1"] == [{"jsonrpc": "2.0", "result": 0.001, "id": "1"}]
    assert by_id["2"] == [{"jsonrpc": "2.0", "result": 0.002, "id": "2"}]
    assert by_id["9"] == [{"jsonrpc": "2.0", "result": "pong", "id": "9"}]
    error_of(by_id["5"][0], METHOD_NOT_FOUND, "5")
    assert len(by_id[None]) == 1
    error_of(by_id[None][0], INVALID_REQUEST, None)
    worker.wait_for_stderr(marker)  # the notification in the batch ran
    assert_next_line_is_ping_reply(worker)


def test_batch_of_only_notifications_writes_nothing(worker: WorkerProcess) -> None:
    marker = f"all-notifications-{time.monotonic_ns()}"
    worker.send(
        [
            {"jsonrpc": "2.0", "method": "debug.print", "params": [marker, "stderr"]},
            {"jsonrpc": "2.0", "method": "ping"},
            {"jsonrpc": "2.0", "method": "no.such.method"},
        ]
    )
    assert_next_line_is_ping_reply(worker)
    worker.wait_for_stderr(marker)


def test_batch_replies_match_their_requests_in_any_order(worker: WorkerProcess) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "debug.sleep", "params": [i / 1000], "id": i} for i in range(5)
    ]
    worker.send(batch)
    reply = worker.read_json()
    assert unordered(reply) == unordered(
        [{"jsonrpc": "2.0", "result": i / 1000, "id": i} for i in range(5)]
    )


# -- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "id_",
    ["abc", "", 'ü ✓ "quoted"', 0, -7, 2**70, 1.5, -0.25, 1.0, 1e-7, 6.02e23],
    ids=lambda v: f"{type(v).__name__}:{v!r}",
)
def test_id_of_every_legal_type_is_echoed_exactly(worker: WorkerProcess, id_: Any) -> None:
    worker.send({"jsonrpc": "2.0", "method": "ping", "id": id_})
    reply = worker.read_json()
    assert reply == {"jsonrpc": "2.0", "result": "pong", "id": id_}
    assert type(reply["id"]) is type(id_)


def test_null_id_is_a_call_answered_with_null_id(worker: WorkerProcess) -> None:
    worker.send_raw(b'{"jsonrpc":"2.0","method":"ping","id":null}\n')
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": None}


def test_error_reply_echoes_a_string_id(worker: WorkerProcess) -> None:
    worker.send({"jsonrpc": "2.0", "method": "debug.sleep", "params": {"seconds": -1}, "id": "neg"})
    error_of(worker.read_json(), INVALID_PARAMS, "neg")


@pytest.mark.parametrize("raw_id", [b"true", b"[1]", b'{"a":1}'])
def test_id_of_an_illegal_type_is_invalid_request_with_null_id(
    worker: WorkerProcess, raw_id: bytes
) -> None:
    worker.send_raw(b'{"jsonrpc":"2.0","method":"ping","id":' + raw_id + b"}\n")
    error_of(worker.read_json(), INVALID_REQUEST, None)


def test_id_too_large_for_a_float_gets_a_reply_and_the_worker_keeps_serving(
    spawn_worker: Spawn,
) -> None:
    worker = spawn_worker()
    worker.send_raw(b'{"jsonrpc":"2.0","method":"ping","id":1e400}\n')
    reply = worker.read_json()
    assert reply["jsonrpc"] == "2.0" and ("error" in reply or reply.get("result") == "pong")
    assert_next_line_is_ping_reply(worker)


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc":"2.0","method":"ping","id":"\\ud800"}\n',
        b'{"jsonrpc":"2.0","method":"\\ud800","id":7}\n',
    ],
    ids=["in-id", "in-method-name"],
)
def test_lone_surrogate_in_an_echoed_string_does_not_kill_the_worker(
    spawn_worker: Spawn, line: bytes
) -> None:
    worker = spawn_worker()
    worker.send_raw(line)
    reply = worker.read_json()
    assert reply["jsonrpc"] == "2.0"
    assert_next_line_is_ping_reply(worker)


# -- invalid requests and parse errors ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "1.0", "method": "ping", "id": 9},
        {"jsonrpc": 2.0, "method": "ping", "id": 9},
        {"method": "ping", "id": 9},
        {"jsonrpc": "2.0", "id": 9},
        {"jsonrpc": "2.0", "method": "ping", "params": "bar", "id": 9},
        {"jsonrpc": "2.0", "method": "ping", "params": None, "id": 9},
    ],
    ids=[
        "version-1.0",
        "version-number",
        "no-version",
        "no-method",
        "params-string",
        "params-null",
    ],
)
def test_malformed_request_is_invalid_request_echoing_its_legal_id(
    worker: WorkerProcess, message: dict[str, Any]
) -> None:
    worker.send(message)
    error_of(worker.read_json(), INVALID_REQUEST, 9)


@pytest.mark.parametrize("raw", [b"42", b'"ping"', b"null", b"true", b"{}"])
def test_json_value_that_is_not_a_request_is_invalid_request(
    worker: WorkerProcess, raw: bytes
) -> None:
    worker.send_raw(raw + b"\n")
    error_of(worker.read_json(), INVALID_REQUEST, None)
    assert_next_line_is_ping_reply(worker)


def test_wrong_jsonrpc_version_without_id_is_still_answered(worker: WorkerProcess) -> None:
    worker.send({"jsonrpc": "1.0", "method": "ping"})
    error_of(worker.read_json(), INVALID_REQUEST, None)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","method":"ping","id":"\xff\xfe"}\n',
        b'{"jsonrpc":"2.0","method":"p\xc3ing","id":1}\n',
        b"\x80\n",
    ],
    ids=["in-id", "truncated-sequence", "lone-continuation-byte"],
)
def test_invalid_utf8_is_parse_error_and_the_worker_keeps_serving(
    worker: WorkerProcess, raw: bytes
) -> None:
    worker.send_raw(raw)
    error_of(worker.read_json(), PARSE_ERROR, None)
    assert_next_line_is_ping_reply(worker)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_tokens_are_parse_errors(worker: WorkerProcess, token: bytes) -> None:
    worker.send_raw(
        b'{"jsonrpc":"2.0","method":"debug.sleep","params":{"seconds":' + token + b'},"id":1}\n'
    )
    error = error_of(worker.read_json(), PARSE_ERROR, None)
    assert token.lstrip(b"-").decode() in error["message"]
    assert_next_line_is_ping_reply(worker)


def test_deeply_nested_json_is_parse_error(worker: WorkerProcess) -> None:
    worker.send_raw(b"[" * 200_000 + b"\n")
    error_of(worker.read_json(), PARSE_ERROR, None)
    assert_next_line_is_ping_reply(worker)


def test_blank_and_whitespace_lines_are_ignored(worker: WorkerProcess) -> None:
    worker.send_raw(b"\n   \n\t\r\n")
    assert_next_line_is_ping_reply(worker)


def test_crlf_line_ending_is_accepted(worker: WorkerProcess) -> None:
    worker.send_raw(b'{"jsonrpc":"2.0","method":"ping","id":"crlf"}\r\n')
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": "crlf"}


def test_requests_written_in_one_chunk_get_one_line_each_in_order(worker: WorkerProcess) -> None:
    worker.send_raw(
        b"".join(
            json.dumps(
                {"jsonrpc": "2.0", "method": "debug.sleep", "params": [i / 1e6], "id": i}
            ).encode()
            + b"\n"
            for i in range(20)
        )
    )
    for i in range(20):
        assert worker.read_json() == {"jsonrpc": "2.0", "result": i / 1e6, "id": i}


# -- limits -------------------------------------------------------------------------------


def _line_of_size(size: int, id_: Any) -> bytes:
    """A valid debug.print request padded to exactly ``size`` bytes (newline excluded)."""
    head = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "debug.print",
            "params": {"target": "stderr", "text": ""},
            "id": id_,
        }
    )
    pad = size - len(head.encode())
    assert pad >= 0
    line = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "debug.print",
            "params": {"target": "stderr", "text": "x" * pad},
            "id": id_,
        }
    ).encode()
    assert len(line) == size
    return line + b"\n"


def test_over_long_line_is_limit_exceeded_and_the_next_line_still_parses(
    spawn_worker: Spawn,
) -> None:
    worker = spawn_worker("--max-line-bytes", "1000")
    # the long line and the next request in one write: the tail of the long line must be
    # discarded exactly up to its newline
    worker.send_raw(
        _line_of_size(5000, "long") + b'{"jsonrpc":"2.0","method":"ping","id":"after"}\n'
    )
    error = error_of(worker.read_json(), LIMIT_EXCEEDED, None)
    assert error["data"]["limit"] == "max_line_bytes"
    assert error["data"]["max"] == 1000
    assert error["data"]["value"] > 1000
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": "after"}


def test_line_far_over_the_limit_is_discarded_whole(spawn_worker: Spawn) -> None:
    worker = spawn_worker("--max-line-bytes", "1000")
    worker.send_raw(
        _line_of_size(1_500_000, "huge") + b'{"jsonrpc":"2.0","method":"ping","id":"after"}\n'
    )
    error_of(worker.read_json(timeout=30), LIMIT_EXCEEDED, None)
    assert worker.read_json(timeout=30) == {"jsonrpc": "2.0", "result": "pong", "id": "after"}


def test_line_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not(
    spawn_worker: Spawn,
) -> None:
    worker = spawn_worker("--max-line-bytes", "1000")
    worker.send_raw(_line_of_size(1000, "at"))
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "stderr", "id": "at"}
    worker.send_raw(_line_of_size(1001, "over"))
    error_of(worker.read_json(), LIMIT_EXCEEDED, None)
    assert_next_line_is_ping_reply(worker)


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc per-thread io")
def test_request_line_is_read_in_chunks_not_byte_by_byte(worker: WorkerProcess) -> None:
    def main_thread_read_syscalls() -> int:
        # /proc/<pid>/task/<pid>/io: the main (serving) thread only, not the warm-up thread
        with open(f"/proc/{worker.pid}/task/{worker.pid}/io") as f:
            fields = dict(line.split(": ") for line in f.read().splitlines())
        return int(fields["syscr"])

    line = _line_of_size(100_000, "big")
    before = main_thread_read_syscalls()
    worker.send_raw(line)
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "stderr", "id": "big"}
    reads = main_thread_read_syscalls() - before
    assert reads < len(line) // 100, f"{reads} read() syscalls for one {len(line)}-byte line"


# -- errors carry data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "field", "reason_part"),
    [
        ("debug.sleep", {"seconds": "x"}, "seconds", "number"),
        ("debug.sleep", {"seconds": 0, "extra": 1}, "extra", "unknown parameter"),
        ("debug.sleep", {}, "seconds", "missing"),
        ("debug.sleep", [0, 1], "params", "positional"),
        ("debug.sleep", {"seconds": True}, "seconds", "number"),
        ("debug.sleep", {"seconds": 3601}, "seconds", "3600"),
        ("debug.print", {"text": "t", "target": "nowhere"}, "target", "fd1"),
        ("debug.print", {"text": 5}, "text", "string"),
        ("debug.exit", {"code": "x"}, "code", "integer"),
        ("ping", {"unexpected": 1}, "unexpected", "unknown parameter"),
    ],
    ids=[
        "bad-type",
        "unknown-param",
        "missing-param",
        "too-many-positional",
        "bool-is-not-a-number",
        "out-of-range",
        "bad-choice",
        "text-not-string",
        "exit-code-not-int",
        "ping-takes-nothing",
    ],
)
def test_invalid_params_names_the_field(
    worker: WorkerProcess, method: str, params: Any, field: str, reason_part: str
) -> None:
    reply = worker.call(method, params)
    error = error_of(reply, INVALID_PARAMS, reply["id"])
    assert set(error["data"]) >= {"field", "reason"}
    assert error["data"]["field"] == field
    assert reason_part in error["data"]["reason"]
    assert field in error["message"]
    assert_next_line_is_ping_reply(worker)


def test_named_param_called_context_is_an_unknown_param_naming_it(worker: WorkerProcess) -> None:
    reply = worker.call("ping", {"context": 1})
    error = error_of(reply, INVALID_PARAMS, reply["id"])
    assert isinstance(error.get("data"), dict), error
    assert error["data"]["field"] == "context"


def test_named_param_called_ctx_is_an_unknown_param_naming_it(worker: WorkerProcess) -> None:
    reply = worker.call("debug.sleep", {"seconds": 0, "ctx": 1})
    error = error_of(reply, INVALID_PARAMS, reply["id"])
    assert error["data"]["field"] == "ctx"
    assert error["data"]["reason"] == "unknown parameter"


def test_handler_exception_is_internal_error_with_its_type(worker: WorkerProcess) -> None:
    reply = worker.call("debug.raise", {"message": "kaboom"})
    error = error_of(reply, INTERNAL_ERROR, reply["id"])
    assert error["data"] == {"type": "RuntimeError"}
    assert "kaboom" in error["message"]
    assert_next_line_is_ping_reply(worker)


def test_method_not_found_data_names_the_method(worker: WorkerProcess) -> None:
    reply = worker.call("no.such.method")
    error = error_of(reply, METHOD_NOT_FOUND, reply["id"])
    assert error.get("data") == "no.such.method"


# -- methods -------------------------------------------------------------------------------


def test_initialize_describes_the_worker(spawn_worker: Spawn) -> None:
    worker = spawn_worker("--max-line-bytes", "4096")
    info = worker.result("initialize", {"client": "tests", "protocol_version": 1})
    assert info["protocol_version"] == 1
    assert isinstance(info["worker_version"], str) and info["worker_version"]
    assert info["python_version"].startswith("3.11")
    assert isinstance(info["dowhy_version"], str) and info["dowhy_version"]
    assert info["pid"] == worker.pid
    assert isinstance(info["methods"], list)
    assert {"initialize", "ping", "shutdown", "fit", "sample", "debug.sleep", "debug.exit"} <= set(
        info["methods"]
    )
    assert isinstance(info["limits"], dict)
    assert info["limits"]["max_line_bytes"] == 4096
    assert all(isinstance(v, int) for v in info["limits"].values())
    assert isinstance(info["warm"], bool)


def test_initialize_without_params_works(worker: WorkerProcess) -> None:
    assert worker.result("initialize")["protocol_version"] == 1


def test_ping_is_pong(worker: WorkerProcess) -> None:
    assert worker.result("ping") == "pong"


def test_debug_methods_do_not_exist_without_test_methods(spawn_worker: Spawn) -> None:
    worker = spawn_worker(test_methods=False)
    reply = worker.call("debug.sleep", {"seconds": 0})
    error_of(reply, METHOD_NOT_FOUND, reply["id"])
    methods = worker.result("initialize")["methods"]
    assert "ping" in methods
    assert not [m for m in methods if m.startswith("debug.")]


def test_shutdown_replies_then_the_process_exits_0(spawn_worker: Spawn) -> None:
    worker = spawn_worker()
    worker.assert_serving()
    # a request after shutdown in the same write is never answered: the worker stops reading
    worker.send_raw(
        b'{"jsonrpc":"2.0","method":"shutdown","id":"bye"}\n{"jsonrpc":"2.0","method":"ping","id":"late"}\n'
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": None, "id": "bye"}
    worker.expect_eof()
    assert worker.wait_exit() == 0


def test_stdin_eof_exits_0_promptly(spawn_worker: Spawn) -> None:
    worker = spawn_worker()
    worker.assert_serving()
    started = time.monotonic()
    worker.close_stdin()
    worker.expect_eof()
    assert worker.wait_exit(timeout=10) == 0
    assert time.monotonic() - started < 10


def test_debug_exit_exits_with_its_code_without_a_reply(spawn_worker: Spawn) -> None:
    worker = spawn_worker()
    worker.send({"jsonrpc": "2.0", "method": "debug.exit", "params": {"code": 3}, "id": 1})
    worker.expect_eof()
    assert worker.wait_exit() == 3


# -- stdout protection ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["fd1", "sys.stdout"])
def test_printing_to_stdout_never_reaches_the_protocol_stream(
    worker: WorkerProcess, target: str
) -> None:
    # the text is a forged reply for the ping that follows: had it reached the protocol
    # stream, the next line would be this forgery instead of the pong
    next_id = worker.next_id()  # reserved for the ping that follows
    forged = json.dumps({"jsonrpc": "2.0", "result": f"forged-{target}", "id": next_id})
    reply = worker.call("debug.print", {"text": forged, "target": target})
    assert reply == {"jsonrpc": "2.0", "result": target, "id": reply["id"]}
    worker.send({"jsonrpc": "2.0", "method": "ping", "id": next_id})
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "pong", "id": next_id}
    worker.wait_for_stderr(forged)


def test_stdout_is_protected_from_the_first_line(spawn_worker: Spawn) -> None:
    worker = spawn_worker()
    worker.send(
        {
            "jsonrpc": "2.0",
            "method": "debug.print",
            "params": {"text": "first-words", "target": "fd1"},
            "id": 1,
        }
    )
    assert worker.read_json() == {"jsonrpc": "2.0", "result": "fd1", "id": 1}
    worker.wait_for_stderr("first-words")


# -- children ------------------------------------------------------------------------------


def test_stdin_eof_after_warmup_leaves_no_joblib_child(spawn_worker: Spawn) -> None:
    """The worker itself stops its loky processes on EOF (no client to kill its group)."""
    worker = spawn_worker(warmup=True, threads=2)  # two: the warm-up starts loky processes
    deadline = time.monotonic() + 120
    while not worker.result("initialize")["warm"]:
        assert time.monotonic() < deadline, "warm-up did not finish within 120 s"
        time.sleep(0.2)
    children = descendants(worker.pid)
    assert children, "the warm-up fit should have started joblib worker processes"
    worker.close_stdin()
    assert worker.wait_exit(timeout=30) == 0
    wait_until(
        lambda: not any(pid_alive(pid) for pid in children), 5, "the worker's children to exit"
    )
