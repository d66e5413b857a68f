"""`scm daemon start|status|stop`: the user's warm worker that outlives every command.

Each worker environment has its own daemon (see _daemon), and the one a command means is
that of ``--python`` (found as every command finds it). ``status`` also names the other
daemons that run, stale ones (of source since edited) among them; ``stop --all`` stops
them all.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import _daemon, _format
from .common import (
    EXIT_ERROR,
    add_command,
    add_global_options_to_actions,
    fail,
    positive_float,
    positive_int,
)

#: status fields in the order the table shows them, and their labels
STATUS_ROWS = (
    ("pid", "pid"), ("worker_version", "version"), ("protocol_version", "protocol"),
    ("uptime_s", "uptime"), ("warm", "warm"), ("connections", "connections"),
    ("requests_served", "requests served"), ("queue_length", "queued"), ("running", "running"),
    ("models", "models"), ("rss_mb", "RSS"), ("threads", "threads"),
    ("idle_timeout_s", "idle timeout"), ("store_dir", "store"), ("socket", "socket"),
    ("python", "python"), ("prefix", "environment"), ("worker_path", "scm_worker from"),
    ("source_digest", "source digest"), ("stale", "stale"),
    ("environment_key", "environment key"),
)
#: what ``stale`` means, where status shows it
STALE_TEXT = "yes: its source changed since it started (new clients get a new daemon)"


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "daemon", run,
                         "start, inspect or stop the user's warm worker daemon",
                         "The daemon keeps one warm worker for every scm command and Python "
                         "process of this user; commands start it when none runs.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start the daemon (nothing to do if one runs)")
    start.add_argument("--idle-timeout", type=float, metavar="S",
                       help="exit after this many seconds without a connection or work "
                            "(default 1800; 0: never)")
    start.add_argument("--threads", type=positive_int, metavar="N",
                       help="threads for the daemon's numeric libraries")
    start.add_argument("--store", metavar="DIR", help="the daemon's model store directory")
    actions.add_parser("status", help="what the environment's daemon is doing, which "
                                      "other daemons run (exit 1 if the first does not)")
    stop = actions.add_parser("stop", help="shut the daemon down: shutdown, SIGTERM, SIGKILL; "
                              "says what running and queued work it stops")
    stop.add_argument("--grace", type=positive_float, default=5.0, metavar="S",
                      help="seconds to wait at each step before escalating (default 5)")
    stop.add_argument("--all", action="store_true",
                      help="stop every daemon of this user: other environments, stale ones")
    add_global_options_to_actions(actions)  # `scm daemon status --python P`: P's daemon


def run(args: argparse.Namespace) -> int:
    if args.action == "start":
        return start(args)
    if args.action == "stop":
        return stop(args)
    return status(args)


def start(args: argparse.Namespace) -> int:
    options = _daemon.DaemonOptions(python=args.python, idle_timeout=args.idle_timeout,
                                    threads=args.threads, store=args.store,
                                    start_timeout=args.timeout or 120.0)
    connection = _daemon.start(options)
    connection.transport().close()
    how = "started" if connection.started else "already running"
    print(f"daemon {how}: pid {connection.pid}, socket {connection.path}")
    return 0


def status(args: argparse.Namespace) -> int:
    """The table of this environment's daemon, then one line for each other daemon."""
    path = _daemon.socket_path(args.python)
    daemons = _daemon.running()
    found = next((daemon.status for daemon in daemons if daemon.path == path), None)
    if found is not None:
        print(status_table(found))
    for daemon in daemons:
        if daemon.path != path:
            print(other_line(daemon))
    if found is None:
        return fail(f"no daemon runs for this worker environment (socket {path}); "
                    f"`scm daemon start` starts one", EXIT_ERROR)
    return 0


def other_line(daemon: _daemon.Running) -> str:
    """One other daemon: its pid, environment, version, socket, and whether it is stale."""
    found = daemon.status
    stale = ", stale: its source changed since it started" if found.get("stale") else ""
    return (f"also running: pid {found.get('pid')}, environment {found.get('prefix', '?')}, "
            f"scm-worker {found.get('worker_version')}{stale} (socket {daemon.path})")


def stop(args: argparse.Namespace) -> int:
    """Say what the shutdown stops (the work other connections have running or queued, from
    ``status``), then send it with ``force``: the daemon refuses it without."""
    if args.all:
        return stop_all(args.grace)
    path = _daemon.socket_path(args.python)
    found = _daemon.status(path)
    work = work_text(found) if found is not None else None
    if work is not None:
        print(f"stopping the daemon's work: {work}")
    taken = _daemon.stop(args.grace, path, force=True)
    print(f"no daemon was running (socket {path})" if taken is None
          else f"daemon stopped ({taken})")
    if any(daemon.path != path for daemon in _daemon.running()):
        print("other daemons still run (other environments, or stale): "
              "`scm daemon stop --all` stops them")
    return 0


def stop_all(grace: float) -> int:
    stopped = _daemon.stop_all(grace)
    for path, pid, taken in stopped:
        print(f"daemon stopped ({taken}): pid {pid}, socket {path}")
    if not stopped:
        print(f"no daemon was running (in {_daemon.runtime_dir()})")
    return 0


def work_text(found: dict[str, Any]) -> str | None:
    """The running request and the queue a ``status`` shows, in words; None when idle."""
    running, queued = found.get("running"), found.get("queue_length") or 0
    parts = []
    if isinstance(running, dict):
        parts.append(f"{running.get('method')} running for {running.get('session')} "
                     f"(id {running.get('id')}, {_format.num(running.get('elapsed_s'), 1)} s)")
    if queued:
        parts.append(f"{queued} queued request(s)")
    return " and ".join(parts) or None


def status_table(found: dict[str, Any]) -> str:
    """The status fields as label/value rows; fields the table does not know come last."""
    known = {key for key, _ in STATUS_ROWS}
    rows = [[label, field_text(key, found[key])] for key, label in STATUS_ROWS if key in found]
    rows += [[key, field_text(key, value)] for key, value in found.items() if key not in known]
    return _format.table(["field", "value"], rows)


def field_text(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "running" and isinstance(value, dict):
        return (f"{value.get('method')} (id {value.get('id')}, "
                f"{_format.num(value.get('elapsed_s'), 1)} s)")
    if key == "models" and isinstance(value, dict):
        return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in value.items())
    if key == "stale" and isinstance(value, bool):
        return STALE_TEXT if value else "no"
    if key in ("uptime_s", "idle_timeout_s") and isinstance(value, (int, float)):
        return f"{value:.0f} s"
    if key == "rss_mb" and isinstance(value, (int, float)):
        return f"{value:.0f} MB"
    return str(value)
