"""Malformed input never stops the worker: every bad line gets its error, the stream goes on.

tests/worker/test_protocol_spec.py proves each case one line at a time (the JSON-RPC 2.0
examples, ids, invalid UTF-8, NaN tokens, nesting, the line limit). Here the same cases
arrive together in one write, as a confused or hostile client would send them, and
then Hypothesis throws thousands of random lines at one worker — random bytes, JSON
fragments, truncated requests, batches mixing good and bad entries, ids of every legal
type, over-long lines — interleaved with real pings. Each line's reply is predicted by
an oracle written from the specification (docs/PROTOCOL.md), so a reply that is lost,
duplicated, out of order or wrong fails the test, and a final ping proves the worker
is alive and in step.
"""

from __future__ import annotations

import functools
import json
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reliability_support import RawWorker

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, LIMIT_EXCEEDED = -32700, -32600, -32601, -32004
DOCUMENTED_CODES = {-32700, -32600, -32601, -32602, -32603, *range(-32008, -32000)}

#: The fuzzed worker's line limit: small, so over-long lines are cheap to make.
MAX_LINE = 65_536
#: Examples for the line fuzz (SCM_FUZZ_SCALE multiplies every example count).
SCALE = float(os.environ.get("SCM_FUZZ_SCALE", "1"))
LINE_EXAMPLES = max(10, int(2500 * SCALE))

#: Methods a random request may name: harmless whatever the params (no shutdown,
#: debug.exit, debug.sleep or warmup, which could stop or stall the worker).
SAFE_METHODS = ["ping", "initialize", "models.list", "models.drop", "models.load", "debug.raise",
                "debug.print", "no.such.method", "fit", "sample"]


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[RawWorker]:
    worker = RawWorker("--no-warmup", "--test-methods", "--no-store", "--max-line-bytes", str(MAX_LINE))
    worker.assert_serving()
    yield worker
    worker.stop()


# -- the oracle ----------------------------------------------------------------------

ANY = object()


@dataclass
class Expect:
    """What one line must produce: nothing, one reply, or one batch array."""

    kind: str  # "none" | "reply" | "batch"
    code: int | None = None  # error code, or None for a result
    id_: Any = None
    result: Any = ANY  # the exact result, when known
    items: list[Expect] = field(default_factory=list)  # for a batch
    internal_ok: bool = False  # may "a result or an error" be -32603? only for debug.raise


#: The one method whose -32603 is its job; from any other (fit, sample, models.*, …) it is a bug.
RAISES_ON_PURPOSE = "debug.raise"


def _legal_id(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))


def _reject(token: str) -> Any:
    raise ValueError(token)


def expect_message(message: Any, methods: set[str]) -> Expect:
    """The reply the specification requires for one parsed request object."""
    echo = message.get("id") if isinstance(message, dict) and _legal_id(message.get("id")) else None
    invalid = Expect("reply", INVALID_REQUEST, echo)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return invalid
    if not isinstance(message.get("method"), str):
        return invalid
    if "params" in message and not isinstance(message["params"], (dict, list)):
        return invalid
    if "id" in message and not _legal_id(message["id"]):
        return invalid
    if set(message) - {"jsonrpc", "method", "params", "id"}:
        return invalid
    if "id" not in message:
        return Expect("none")  # a notification, whatever it does
    if message["method"] not in methods:
        return Expect("reply", METHOD_NOT_FOUND, message["id"])
    if message["method"] == "ping" and not message.get("params"):
        return Expect("reply", None, message["id"], "pong")
    # a result or an error, for this id; never -32603 (a handler bug) but from debug.raise
    return Expect("reply", ANY, message["id"], internal_ok=message["method"] == RAISES_ON_PURPOSE)


def expect_line(raw: bytes, methods: set[str]) -> Expect:
    """The worker's reply to one line ``raw`` (without its newline)."""
    if len(raw) > MAX_LINE:
        return Expect("reply", LIMIT_EXCEEDED, None)
    if not raw.strip():
        return Expect("none")
    try:
        message = json.loads(raw.decode("utf-8"), parse_constant=_reject)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Expect("reply", PARSE_ERROR, None)
    if isinstance(message, list):
        if not message:
            return Expect("reply", INVALID_REQUEST, None)
        items = [expect_message(item, methods) for item in message]
        answered = [item for item in items if item.kind != "none"]
        return Expect("batch", items=answered) if answered else Expect("none")
    return expect_message(message, methods)


def matches(reply: Any, expect: Expect) -> bool:
    if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
        return False
    if "id" not in reply or reply["id"] != expect.id_ or type(reply["id"]) is not type(expect.id_):
        return False
    if set(reply) not in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}):
        return False
    if "error" in reply:
        error = reply["error"]
        if not (isinstance(error, dict) and isinstance(error.get("message"), str)):
            return False
        if expect.code is ANY:
            return error.get("code") in DOCUMENTED_CODES and (error.get("code") != -32603 or expect.internal_ok)
        return error.get("code") == expect.code
    if expect.code not in (None, ANY):
        return False
    return expect.result is ANY or reply["result"] == expect.result


def check_batch(reply: Any, expect: Expect) -> None:
    assert isinstance(reply, list) and len(reply) == len(expect.items), (reply, expect)
    left = list(reply)
    # exact expectations first, so a lenient one cannot take a reply an exact one needs
    for item in sorted(expect.items, key=lambda e: e.code is ANY):
        found = next((r for r in left if matches(r, item)), None)
        assert found is not None, f"no reply matches {item} in {reply}"
        left.remove(found)


#: docs/PROTOCOL.md: control requests are answered by the connection's reader at once
CONTROL = frozenset({"initialize", "ping", "status", "warmup", "$/cancelRequest"})


def answered_at_once(raw: bytes) -> bool:
    """The protocol's routing of one line: what the reader answers itself (control requests
    and what is no request at all) rather than queueing it for the compute thread."""
    if len(raw) > MAX_LINE:
        return True
    try:
        message = json.loads(raw.decode("utf-8"), parse_constant=_reject)
    except (ValueError, RecursionError):
        return True
    if isinstance(message, list):
        return not message
    if not isinstance(message, dict):
        return True
    method = message.get("method")
    return not isinstance(method, str) or method in CONTROL


def fits(reply: Any, expect: Expect) -> bool:
    if expect.kind != "batch":
        return matches(reply, expect)
    try:
        check_batch(reply, expect)
    except AssertionError:
        return False
    return True


def interleaves(replies: list[Any], at_once: list[Expect], queued: list[Expect]) -> bool:
    """Whether ``replies`` is the two streams merged, each in its own order: the reader's
    answers in read order, the compute thread's in queue order, interleaved as they came."""
    @functools.cache
    def rest_fits(k: int, i: int, j: int) -> bool:
        if k == len(replies):
            return i == len(at_once) and j == len(queued)
        return (i < len(at_once) and fits(replies[k], at_once[i]) and rest_fits(k + 1, i + 1, j)) or (
            j < len(queued) and fits(replies[k], queued[j]) and rest_fits(k + 1, i, j + 1))

    return rest_fits(0, 0, 0)


def send_and_check(worker: RawWorker, lines: list[bytes], methods: set[str], fuzzing: bool = False) -> None:
    """Write every line in one chunk, then a ping; every reply must be the predicted one.

    Each reply is predicted exactly; their order is the protocol's: a line the reader
    answers itself comes back in read order, a queued one in queue order, and the two
    streams interleave (docs/PROTOCOL.md, "Control requests are answered at once").
    """
    anchor = f"anchor-{uuid.uuid4().hex}"
    ping = json.dumps({"jsonrpc": "2.0", "method": "ping", "id": anchor}).encode()
    worker.send_raw(b"".join(line + b"\n" for line in lines) + ping + b"\n")
    at_once: list[Expect] = []
    queued: list[Expect] = []
    for line in lines:
        expect = expect_line(line, methods)
        if fuzzing:  # --hypothesis-show-statistics tells how often each outcome was met
            outcome = "result" if expect.code is None else "result or error" if expect.code is ANY else expect.code
            event("no reply" if expect.kind == "none" else f"{expect.kind}: {outcome}")
        if expect.kind != "none":
            (at_once if answered_at_once(line) else queued).append(expect)
    at_once.append(Expect("reply", None, anchor, "pong"))
    replies = [worker.read_json() for _ in range(len(at_once) + len(queued))]
    assert interleaves(replies, at_once, queued), (
        f"lines {[line[:120] for line in lines]}\nexpected, answered at once {at_once}\n"
        f"expected, queued {queued}\ngot {replies}")


# -- every listed case, in one write -------------------------------------------------


#: Every listed case (docs/RELIABILITY.md counts them), sent in one write.
MALFORMED_CASES = [
    b'{"jsonrpc":"2.0","method":"ping","id":"\xff\xfe"}',       # invalid UTF-8
    b"\x80\xc3",                                                  # invalid UTF-8, no JSON at all
    b'{"jsonrpc":"2.0","method":"ping","id":1',                   # truncated JSON
    b'{"jsonrpc":"2.0","method":"pi',                             # truncated in a string
    b"42", b'"ping"', b"null", b"true", b"{}",                    # JSON values that are not requests
    b'{"jsonrpc":"1.0","method":"ping","id":9}',                  # wrong version, id echoed
    b'{"jsonrpc":2.0,"method":"ping","id":"v"}',
    b'{"method":"ping","id":10}',
    b'{"jsonrpc":"2.0","method":"ping","id":"text-id"}',         # ids of every legal type
    b'{"jsonrpc":"2.0","method":"ping","id":-17}',
    b'{"jsonrpc":"2.0","method":"ping","id":2.5}',
    b'{"jsonrpc":"2.0","method":"ping","id":123456789012345678901234567890}',
    b'{"jsonrpc":"2.0","method":"ping","id":null}',
    b'{"jsonrpc":"2.0","method":"ping","id":true}',              # illegal id types
    b'{"jsonrpc":"2.0","method":"ping","id":[1]}',
    b'{"jsonrpc":"2.0","method":"ping","id":1e400}',              # too large for a float
    b"[]",                                                        # empty batch
    b'[{"jsonrpc":"2.0","method":"ping","id":"b1"},1,{"jsonrpc":"2.0","method":"ping"},'
    b'{"jsonrpc":"2.0","method":"nope","id":"b2"},{"jsonrpc":"1.0","method":"ping","id":"b3"}]',
    b"[" * 100_000 + b"]" * 100_000,                              # deeply nested (over the limit too)
    b"[" * 30_000,                                                # deeply nested, within the limit
    b'{"jsonrpc":"2.0","method":"debug.sleep","params":{"seconds":NaN},"id":1}',
    b'{"jsonrpc":"2.0","method":"debug.sleep","params":{"seconds":Infinity},"id":1}',
    b'{"jsonrpc":"2.0","method":"debug.sleep","params":{"seconds":-Infinity},"id":1}',
    b'{"jsonrpc":"2.0","method":"debug.sleep","params":{"seconds":1e400},"id":"big"}',
    b'{"jsonrpc":"2.0","method":"ping","id":' + b"9" * 5000 + b"}",  # over int max digits
    b'{"jsonrpc":"2.0","method":"debug.print","params":{"text":"' + b"x" * (MAX_LINE + 10) + b'"},"id":"long"}',
    b'{"jsonrpc":"2.0","method":"ping","id":"after-long"}',
    b"   \t\r",                                                   # blank: no reply
]


def test_every_malformed_case_in_one_stream_gets_its_error_in_order(fuzzed: RawWorker) -> None:
    methods = set(fuzzed.result("initialize")["methods"])
    send_and_check(fuzzed, MALFORMED_CASES, methods)


# -- the line fuzz ---------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
#: Strings with the awkward characters: escapes, lone surrogates, NUL, line separators.
awkward_text = st.one_of(
    st.text(max_size=12),
    st.text(st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "\n", "é", '"', "\\", "\x7f"]), max_size=6),
)
legal_ids = st.one_of(
    awkward_text, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.none(),
)
illegal_ids = st.one_of(st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request object, valid or broken in one or more members."""
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        message["jsonrpc"] = "2.0" if draw(st.integers(0, 5)) else draw(st.sampled_from(["1.0", 2.0, None, "2.0 "]))
    if draw(st.integers(0, 9)):
        message["method"] = draw(st.sampled_from(SAFE_METHODS)) if draw(st.integers(0, 5)) else draw(json_values)
    choice = draw(st.integers(0, 5))
    if choice == 1:
        message["params"] = draw(st.dictionaries(st.sampled_from(["text", "target", "message", "model_id", "x"]), json_values, max_size=3))
    elif choice == 2:
        message["params"] = draw(st.lists(json_values, max_size=3))
    elif choice == 3:
        message["params"] = draw(json_scalars)
    if draw(st.integers(0, 5)):
        message["id"] = draw(legal_ids) if draw(st.integers(0, 5)) else draw(illegal_ids)
    if not draw(st.integers(0, 15)):
        message[draw(st.text(max_size=5))] = draw(json_scalars)
    if message.get("method") == "debug.print" and isinstance(message.get("params"), dict):
        message["params"].pop("target", None)  # stay on stderr: never a reason to exit
    return message


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """One line (no newline) of some kind of damage, or a valid request."""
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return draw(st.binary(max_size=64)).replace(b"\n", b"")
    if kind == 1:  # a request cut short
        data = encode(draw(requests()))
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == 2:  # a request with bytes spliced in
        data = encode(draw(requests()))
        at = draw(st.integers(0, len(data)))
        return (data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]).replace(b"\n", b"")
    if kind == 3:
        return encode(draw(json_values))
    if kind == 4:  # a batch of requests and junk
        items = draw(st.lists(st.one_of(requests(), json_values), max_size=6))
        return encode(items)
    if kind == 5:  # NaN / Infinity / huge numbers where a value goes
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"9" * 4400]))
        return b'{"jsonrpc":"2.0","method":"ping","id":' + token + b"}"
    if kind == 6:  # deep nesting
        depth = draw(st.integers(12_000, 30_000))  # past every Python's JSON nesting limit
        return b"[" * depth + (b"]" * depth if draw(st.booleans()) else b"")
    if kind == 7:  # over the line limit
        unit = draw(st.binary(min_size=1, max_size=8)).replace(b"\n", b"") or b"x"
        size = draw(st.integers(MAX_LINE + 1, MAX_LINE + 3 * 4096))
        return (unit * (size // len(unit) + 1))[:size]
    if kind == 8:  # exactly at or just around the limit: a valid ping padded with spaces
        ping = encode({"jsonrpc": "2.0", "method": "ping", "id": "edge"})
        return ping + b" " * (MAX_LINE - len(ping) + draw(st.integers(-2, 2)))
    if kind == 9:
        return draw(st.sampled_from([b"", b" ", b"\r", b"\t \x0b\x0c", b"\x00"]))
    return encode(draw(requests()))  # kinds 10, 11: a whole request, valid or not


_methods: set[str] = set()


@settings(max_examples=LINE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(lines(), min_size=1, max_size=8))
def test_random_lines_interleaved_with_pings_each_get_the_predicted_reply(fuzzed: RawWorker, batch: list[bytes]) -> None:
    if not _methods:
        _methods.update(fuzzed.result("initialize")["methods"])
    send_and_check(fuzzed, batch, _methods, fuzzing=True)


@settings(max_examples=max(10, int(300 * SCALE)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(legal_ids, st.booleans()), min_size=1, max_size=12))
def test_ids_of_every_legal_type_are_echoed_exactly_alone_and_in_batches(
    fuzzed: RawWorker, calls: list[tuple[Any, bool]]
) -> None:
    # the id the JSON text denotes: "\\ud800\\udfff" written by json.dumps is one code point
    calls = [(json.loads(json.dumps(id_)), good) for id_, good in calls]
    for id_, good in calls:
        fuzzed.send({"jsonrpc": "2.0", "method": "ping" if good else "no.such", "id": id_})
        reply = fuzzed.read_json()
        assert reply["id"] == id_ and type(reply["id"]) is type(id_), (id_, reply)
        assert reply.get("result") == "pong" if good else reply["error"]["code"] == METHOD_NOT_FOUND
    distinct = list({json.dumps(id_): (id_, good) for id_, good in calls}.values())  # matchable in a batch
    fuzzed.send([{"jsonrpc": "2.0", "method": "ping" if good else "no.such", "id": id_} for id_, good in distinct])
    replies = fuzzed.read_json()
    assert isinstance(replies, list) and len(replies) == len(distinct)
    by_id = {json.dumps(r["id"]): r for r in replies}
    assert len(by_id) == len(distinct)
    for id_, good in distinct:
        reply = by_id[json.dumps(id_)]
        assert type(reply["id"]) is type(id_)
        assert reply.get("result") == "pong" if good else reply["error"]["code"] == METHOD_NOT_FOUND


def test_worker_is_alive_and_correct_after_the_fuzz(fuzzed: RawWorker) -> None:
    """Runs last in this module: the same process answered everything above."""
    assert fuzzed.proc.poll() is None
    info = fuzzed.result("initialize")
    assert info["pid"] == fuzzed.pid
    assert fuzzed.result("debug.sleep", {"seconds": 0.01}) == 0.01
    fuzzed.assert_serving()
