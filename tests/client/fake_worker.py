"""A stand-in for ``python -m scm_worker``: standard library only, misbehaving on request.

It speaks the worker's line protocol for a handful of methods and imitates the
failures a client must survive. The client tests put this file in a temporary package
named ``scm_worker`` (as its ``__main__``) that a fake environment's site-packages point
at (conftest.py), so the client's own ``[python, "-I", "-m", "scm_worker", ...]`` runs it.

Methods: ``initialize``, ``ping``, ``shutdown``, and for the tests
``echo`` (result = params), ``sleep {seconds}``, ``stall`` (never answered),
``exit {code}``, ``exit_once {marker}`` (exit 1 unless the file exists, creating it:
a crash the restarted worker does not repeat), ``progress`` (a ``progress`` notification, then the reply),
``error {code, message, data}`` (that error), ``no_result`` (a reply with neither
result nor error), ``not_a_message`` (the JSON line ``42``), ``stray`` (a reply for an
id nobody asked, then the real one), ``batch_reply`` (the reply inside an array),
``defer {value}`` / ``flush`` (deferred replies, written newest first on ``flush``),
``deferred`` (how many deferred replies are held: the defers it has read),
``fit`` (a fit result of no model: what the client sends is in FAKE_RECORD_FILE).
Anything else is -32601.

Environment switches:
    FAKE_PID_FILE=path            append this process's pid to the file at start
    FAKE_FAIL_ON_START=1          write a message to stderr and exit 2 before reading anything
    FAKE_STARTUP_DELAY=seconds    sleep before reading the handshake
    FAKE_GARBAGE_ON_START=1       write a non-JSON line before reading anything
    FAKE_PROTOCOL_VERSION=n       the protocol_version initialize reports (default 1)
    FAKE_WORKER_VERSION=v         the worker_version initialize reports (conftest: the client's)
    FAKE_NO_SHUTDOWN_REPLY=1      ignore ``shutdown`` (keep serving)
    FAKE_LINGER_AFTER_SHUTDOWN=1  answer ``shutdown`` but do not exit
    FAKE_IGNORE_SIGTERM=1         ignore SIGTERM
    FAKE_GARBAGE_STDOUT=1         answer ``ping`` with a non-JSON line
    FAKE_STDERR_FLOOD=N           before answering ``ping``, write N MB to stderr
    FAKE_COLUMN_ENCODINGS=a,b     the column_encodings initialize reports (default: none named)
    FAKE_RECORD_FILE=path         append every line read from stdin to the file, as read
    FAKE_CANCELLABLE=1            a ``$/cancelRequest`` of a stalled request answers it -32800
                                  (otherwise cancellations are ignored, as an old worker's)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any


def env(name: str) -> str:
    return os.environ.get(name, "")


def write(message: Any) -> None:
    sys.stdout.buffer.write(json.dumps(message).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def write_raw(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


def log(text: str) -> None:
    sys.stderr.write(f"fake-worker[{os.getpid()}] {text}\n")
    sys.stderr.flush()


def result(id_: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id_}


def error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": id_}


def flood_stderr(megabytes: int) -> None:
    line = ("x" * 1023 + "\n").encode()
    for _ in range(megabytes * 1024):
        sys.stderr.buffer.write(line)
    sys.stderr.buffer.flush()
    log("flood done")


def main() -> int:
    if env("FAKE_PID_FILE"):
        with open(env("FAKE_PID_FILE"), "a") as f:
            f.write(f"{os.getpid()}\n")
    log("starting")
    if env("FAKE_FAIL_ON_START"):
        log("refusing to start: FAKE_FAIL_ON_START is set")
        return 2
    if env("FAKE_IGNORE_SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if env("FAKE_STARTUP_DELAY"):
        time.sleep(float(env("FAKE_STARTUP_DELAY")))
    if env("FAKE_GARBAGE_ON_START"):
        write_raw(b"Hello from a library that prints on import\n")

    deferred: list[dict[str, Any]] = []
    stalled: set[Any] = set()
    for raw in sys.stdin.buffer:
        if env("FAKE_RECORD_FILE"):
            with open(env("FAKE_RECORD_FILE"), "ab") as f:
                f.write(raw)
        if not raw.strip():
            continue
        message = json.loads(raw)
        method = message.get("method")
        params = message.get("params")
        if "id" not in message:
            if method == "$/cancelRequest" and env("FAKE_CANCELLABLE"):
                cancel(stalled, params.get("id"))
            continue  # other notifications get no answer
        id_ = message["id"]

        if method == "initialize":
            version = int(env("FAKE_PROTOCOL_VERSION") or 1)
            worker_version = env("FAKE_WORKER_VERSION") or "unset"
            info = {"protocol_version": version, "worker_version": worker_version, "pid": os.getpid(),
                    "fake": True, "warm": True}
            if env("FAKE_COLUMN_ENCODINGS"):
                info["column_encodings"] = env("FAKE_COLUMN_ENCODINGS").split(",")
            write(result(id_, info))
        elif method == "ping":
            if env("FAKE_STDERR_FLOOD"):
                flood_stderr(int(env("FAKE_STDERR_FLOOD")))
            if env("FAKE_GARBAGE_STDOUT"):
                write_raw(b"this line is not JSON\n")
            else:
                write(result(id_, "pong"))
        elif method == "shutdown":
            if env("FAKE_NO_SHUTDOWN_REPLY"):
                log("ignoring shutdown")
                continue
            write(result(id_, None))
            if env("FAKE_LINGER_AFTER_SHUTDOWN"):
                log("answered shutdown; lingering")
                while True:
                    time.sleep(3600)
            return 0
        elif method == "echo":
            write(result(id_, params))
        elif method == "sleep":
            time.sleep(params["seconds"])
            write(result(id_, params["seconds"]))
        elif method == "stall":
            stalled.add(id_)
        elif method == "exit":
            code = params["code"]
            log(f"exiting with code {code} as asked")
            sys.stdout.flush()
            os._exit(code)
        elif method == "exit_once":
            marker = params["marker"]  # the first worker to read it exits; its successor answers
            if not os.path.exists(marker):
                open(marker, "w").close()
                log("exiting once, as asked")
                sys.stdout.flush()
                os._exit(1)
            write(result(id_, "after a crash"))
        elif method == "progress":
            write(
                {
                    "jsonrpc": "2.0",
                    "method": "progress",
                    "params": {"request_id": id_, "stage": "fit", "done": 1, "total": 2},
                }
            )
            write(result(id_, "done"))
        elif method == "fit":
            write(result(id_, {"model_id": "fake", "status": "fitted", "scm": {},
                               "validation": {}, "warnings": [], "metadata": {}}))
        elif method == "error":
            write(error(id_, params["code"], params["message"], params.get("data")))
        elif method == "no_result":
            write({"jsonrpc": "2.0", "id": id_})
        elif method == "not_a_message":
            write_raw(b"42\n")
        elif method == "stray":
            write(result(987654321, "for nobody"))
            write(result(id_, "ok"))
        elif method == "batch_reply":
            write([result(id_, "in a batch")])
        elif method == "defer":
            deferred.append(result(id_, params["value"]))
        elif method == "deferred":
            write(result(id_, len(deferred)))
        elif method == "flush":
            for reply in reversed(deferred):
                write(reply)
            deferred.clear()
            write(result(id_, "flushed"))
        else:
            write(error(id_, -32601, "Method not found", method))
    log("stdin closed; exiting")
    return 0


def cancel(stalled: set[Any], id_: Any) -> None:
    """Answer a stalled request -32800, as the real worker answers a cancelled one."""
    if id_ in stalled:
        stalled.discard(id_)
        write(error(id_, -32800, "Request cancelled", {"id": id_, "stage": "running"}))


if __name__ == "__main__":
    sys.exit(main())
