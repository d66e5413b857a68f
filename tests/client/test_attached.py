"""Attached result parts on the client's side of a real pipe: what ``$/attached`` lists is
read into arrays and held for the reply of the request it names, and a peer that gets it
wrong is caught.

A small process writes the bytes a worker would (the real worker's side is
tests/worker/test_columns.py, the whole path tests/e2e/test_wire.py).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from array import array
from collections.abc import Iterator
from typing import Any

import pytest
from scm_client import ProtocolError, WorkerCrashed
from scm_client._channel import Channel
from scm_client._process import spawn
from scm_client._wire import columns_from_wire
from scm_client.results import AttachedResult

#: writes its argv[1] (raw bytes in hex) to stdout once it has read argv[2] requests
WRITER = ("import sys\nfor _ in range(int(sys.argv[2])): sys.stdin.readline()\n"
          "sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))")


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def header(request_id: Any, *sizes: int, dtype: str = "float64") -> bytes:
    parts = [{"dtype": dtype, "bytes": size} for size in sizes]
    return line({"jsonrpc": "2.0", "method": "$/attached", "params": {"id": request_id, "parts": parts}})


def reply(request_id: int, result: Any) -> bytes:
    return line({"jsonrpc": "2.0", "id": request_id, "result": result})


@pytest.fixture
def channel_writing() -> Iterator[Any]:
    """``channel_writing(payload, requests=1)``: a Channel on a real process that writes
    ``payload`` once it has read that many requests."""
    opened: list[tuple[subprocess.Popen[bytes], Channel]] = []

    def make(payload: bytes, requests: int = 1) -> Channel:
        proc = spawn([sys.executable, "-c", WRITER, payload.hex(), str(requests)], None)
        channel = Channel(proc)
        opened.append((proc, channel))
        return channel

    yield make
    for proc, channel in opened:
        proc.kill()
        proc.wait()
        channel.join()


def test_parts_arrive_as_arrays_on_the_reply_of_the_request_they_name(channel_writing: Any) -> None:
    xs, ys = struct.pack("<2d", 1.5, float("nan")), struct.pack("<d", -2.0)
    samples = {"X": {"dtype": "float64", "attached": 0}, "Y": {"dtype": "float64", "attached": 1}, "C": ["a"]}
    progress = line({"jsonrpc": "2.0", "method": "progress", "params": {"request_id": 1, "stage": "sampling"}})
    # another request's reply and a notification come between the parts and their reply;
    # parts for an id nobody waits for are read past
    channel = channel_writing(header(1, 16, 8) + xs + ys + reply(2, {"samples": {}}) + progress
                              + header(99, 8) + ys + reply(1, {"samples": samples}), requests=2)
    first, second = channel.request("sample")[1], channel.request("sample")[1]
    assert type(second.result(timeout=10)) is dict  # no parts named it
    result = first.result(timeout=10)
    assert isinstance(result, AttachedResult) and dict(result) == {"samples": samples}
    columns = columns_from_wire(result["samples"], result.attached)
    assert isinstance(columns["X"], array) and columns["X"].typecode == "d"
    assert columns["X"][0] == 1.5 and columns["X"][1] != columns["X"][1]  # NaN: missing
    assert columns["Y"].tolist() == [-2.0] and columns["C"] == ["a"]


def test_a_block_naming_a_part_the_reply_did_not_bring_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="attached part 2"):
        columns_from_wire({"X": {"dtype": "float64", "attached": 2}}, [array("d", [1.0])])
    with pytest.raises(ProtocolError, match="brought 0"):
        columns_from_wire({"X": {"dtype": "float64", "attached": 0}}, None)


@pytest.mark.parametrize("bad", [header(1, 7), header(1, 8, dtype="int64"), header(1, -8),
                                 line({"jsonrpc": "2.0", "method": "$/attached", "params": {"id": 1, "bytes": 8}})])
def test_an_attached_notice_that_is_not_float64_byte_counts_fails_the_calls(channel_writing: Any,
                                                                            bad: bytes) -> None:
    channel = channel_writing(bad + b"\0" * 8 + reply(1, {}))
    with pytest.raises(ProtocolError, match=r"\$/attached"):
        channel.request("sample")[1].result(timeout=10)


def test_parts_cut_short_by_the_peer_s_exit_are_a_crash(channel_writing: Any) -> None:
    channel = channel_writing(header(1, 800) + b"\0" * 10)
    with pytest.raises(WorkerCrashed):
        channel.request("sample")[1].result(timeout=10)
