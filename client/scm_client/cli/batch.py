"""`scm batch`: fit a folder (or JSONL file) of requests on a WorkerPool, with progress.

Each result is one JSON line in ``--out`` (input order): ``{"index", "name", "ok",
"result"}`` or ``{"index", "name", "ok": false, "error": {"type", "code", "message",
"data"}}``. A terminal gets a live bar (done/total, rate, ETA; progress.py), ``-v``
elsewhere plain lines. The summary counts fitted, failed validation and errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .. import _format
from ..errors import RemoteError, ValidationFailed
from ..pool import BatchItem, WorkerPool
from .common import InputError, Request, add_command, read_requests
from .progress import Line, line_text, mode_for


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "batch", run,
                         "fit many requests (a folder of *.json or a JSONL file) on a worker pool")
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="folder of request files, or a .jsonl file")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes (default: one per core; "
                             "each gets cores // N threads)")
    parser.add_argument("--out", type=Path, default=Path("results.jsonl"), metavar="FILE",
                        help="results, one JSON line per request in input order "
                             "(default results.jsonl)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="fit on the Dask cluster at ADDRESS (e.g. tls://host:8786) through "
                             "one local worker, the gateway; see docs/CLUSTER.md")
    for flag, what in (("--tls-ca-file", "the CA that signed the cluster's certificates"),
                       ("--tls-cert", "this client's certificate, signed by that CA"),
                       ("--tls-key", "the key of --tls-cert (unless its file holds the key)")):
        parser.add_argument(flag, type=Path, default=None, metavar="PEM",
                            help=f"tls:// scheduler: {what} (default: Dask's own configuration)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a plain tcp:// scheduler that is not on this machine: "
                             "unauthenticated, unencrypted, and Dask's replies are pickles")


def run(args: argparse.Namespace) -> int:
    if args.scheduler is None and _cluster_security(args):
        print("scm batch: --insecure and --tls-* are for a Dask cluster: add --scheduler ADDRESS",
              file=sys.stderr)
        return 2
    if not args.input.exists():
        print(f"scm batch: {args.input} does not exist", file=sys.stderr)
        return 2
    try:
        named = read_requests(args.input)
    except InputError as exc:
        print(f"scm batch: {exc}", file=sys.stderr)
        return 2
    if not named:
        print(f"scm batch: no requests in {args.input}", file=sys.stderr)
        return 2
    progress = Progress(len(named), Line(sys.stderr, mode_for(args, sys.stderr), "scm batch"))
    started = time.perf_counter()
    with WorkerPool(args.workers, python=args.python, request_timeout=args.timeout,
                    scheduler=args.scheduler, insecure=args.insecure, tls_ca_file=args.tls_ca_file,
                    tls_cert=args.tls_cert, tls_key=args.tls_key) as pool:
        try:
            items = pool.fit_many([request.as_dict() for request in named],
                                  on_progress=progress.update)
        finally:
            progress.finish()
        cluster = pool.last_batch
    if cluster is not None and cluster.get("rescheduled"):
        print(f"scm batch: Dask rescheduled items {cluster['rescheduled_items']} after losing "
              f"{', '.join(cluster['lost_workers'])}", file=sys.stderr)
    write_results(args.out, named, items)
    print(summary(items, time.perf_counter() - started, args.out))
    return 0 if all(item.ok for item in items) else 1


def _cluster_security(args: argparse.Namespace) -> bool:
    return bool(args.insecure or args.tls_ca_file or args.tls_cert or args.tls_key)


def write_results(path: Path, named: list[Request], items: list[BatchItem]) -> None:
    with path.open("w") as out:
        for request, item in zip(named, items, strict=True):
            out.write(json.dumps(result_line(request.name, item), allow_nan=False) + "\n")


def result_line(name: str, item: BatchItem) -> dict[str, Any]:
    line: dict[str, Any] = {"index": item.index, "name": name, "ok": item.ok,
                            "attempts": item.attempts}
    if item.result is not None:
        line["result"] = item.result.raw
    if item.error is not None:
        error = item.error
        line["error"] = {
            "type": type(error).__name__,
            "code": error.code if isinstance(error, RemoteError) else None,
            "message": error.message if isinstance(error, RemoteError) else str(error),
            "data": error.data if isinstance(error, RemoteError) else None,
        }
    return line


def outcome(item: BatchItem) -> str:
    if item.ok:
        return "fitted"
    return "failed validation" if isinstance(item.error, ValidationFailed) else "error"


def summary(items: list[BatchItem], seconds: float, out: Path) -> str:
    counts = {kind: sum(outcome(i) == kind for i in items)
              for kind in ("fitted", "failed validation", "error")}
    rows = [[kind, count] for kind, count in counts.items()] + [["total", len(items)]]
    rate = len(items) / seconds if seconds > 0 else 0.0
    return (_format.table(["outcome", "requests"], rows)
            + f"\n\n{len(items)} requests in {seconds:.1f} s ({rate:.2f}/s); results in {out}")


class Progress:
    """The batch's bar on the shared progress Line; the last state stays on screen."""

    def __init__(self, total: int, line: Line) -> None:
        self.total = total
        self.line = line
        self.started = time.monotonic()

    def update(self, done: int, total: int, item: BatchItem) -> None:
        text = line_text(done, total, time.monotonic() - self.started, "requests", rate=True)
        self.line.draw(text, force=done == total)

    def finish(self) -> None:
        self.line.end()
