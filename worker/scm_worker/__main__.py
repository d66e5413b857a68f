"""Entry point: flags, logging, the stdout guard, warm-up, then stdio or the daemon's socket.

Either way the same pieces serve: sessions read by their own threads, one compute
thread behind a fair queue (scheduler.py). On stdio the worker lives as long as its
one client; with ``--listen PATH`` it is the user's daemon, detached, logging to a
bounded file beside the socket and announcing itself with one line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import __version__, identity
from .context import WorkerContext
from .engine.store_trust import EXIT_STORE_REFUSED
from .engine.warmup import limit_threads
from .limits import READ_BUFFER_BYTES, Limits

if TYPE_CHECKING:
    from .engine.store import ModelStore
    from .server.listener import SocketWatch

log = logging.getLogger("scm_worker")

DEFAULT_IDLE_TIMEOUT_S = 1800.0
#: connections a daemon serves at once: each holds a thread and a file descriptor
DEFAULT_MAX_CONNECTIONS = 64
#: how often a daemon checks that its socket path still names its socket, seconds
DEFAULT_SOCKET_CHECK_S = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m scm_worker", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--log-level", default=os.environ.get("SCM_WORKER_LOG_LEVEL", "INFO"))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS/OpenMP and joblib jobs (default: library defaults)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up fit")
    parser.add_argument("--test-methods", action="store_true", help="expose debug.* methods")
    parser.add_argument("--listen", type=Path, default=None, metavar="PATH",
                        help="serve as the user's daemon on this Unix socket instead of stdio")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_S,
                        metavar="SECONDS",
                        help="with --listen: exit after this long with no connection and no "
                        "work (0: never; default %(default)s)")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="with --listen: the daemon's log (default: beside the socket)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="with --listen: connections served at once; more are "
                        "refused with -32004 (default %(default)s)")
    parser.add_argument("--socket-check-interval", type=float, default=DEFAULT_SOCKET_CHECK_S,
                        metavar="SECONDS", help="with --listen: how often to check that the "
                        "socket path still names this daemon's socket, which exits when it does "
                        "not (0: never; default %(default)s)")
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--store", type=Path, default=None,
                       help="directory of persisted models (default: ~/.cache/scm-worker/models)")
    store.add_argument("--no-store", action="store_true", help="keep models in memory only")
    for name, value in defaults.as_dict().items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=value, dest=name)
    return parser.parse_args(argv)


def guard_stdout() -> tuple[BinaryIO, BinaryIO]:
    """Keep private handles on the real stdin/stdout; point fds 0/1 elsewhere.

    After this nothing DoWhy, tqdm, warnings or C code writes to fd 1 or sys.stdout can
    reach the protocol stream: it all lands on stderr. The private fds are not
    inheritable, so joblib's children never hold the protocol pipes open.
    """
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=READ_BUFFER_BYTES)  # not byte by byte
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return protocol_in, protocol_out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    identity.at_start()  # the digest of the source about to be imported, before any of it is
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="scm-worker[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    if args.threads is not None:
        limit_threads(args.threads)
    protocol_in, protocol_out = guard_stdout()
    store = open_store(args, protocol_out)
    if store is None:
        code = EXIT_STORE_REFUSED
    elif args.listen:
        code = serve_daemon(args, store, protocol_out)
    else:
        code = serve_stdio(args, store, protocol_in, protocol_out)
    shutdown_children()
    logging.shutdown()
    # Readers may still block in their threads; leave without finalising their streams.
    os._exit(code)


def limits_of(args: argparse.Namespace) -> Limits:
    return Limits(**{k: getattr(args, k) for k in Limits().as_dict()})


def open_store(args: argparse.Namespace, announce: BinaryIO) -> ModelStore | None:
    """The model store, or None when its directory or key could be changed by someone
    else (store_trust.py): then the worker does not start at all, whichever transport.

    Its every later load would trust that key, so serving without it (or failing each
    store call) would hide the problem; the refusal names the path and the fix, on stderr
    and, for a daemon, in its ready line, which the starting client raises.
    """
    from .engine.persistence import default_store_dir
    from .engine.store import ModelStore
    from .engine.store_trust import StoreRefused

    limits = limits_of(args)
    store_dir = None if args.no_store else (args.store or default_store_dir())
    try:
        return ModelStore(limits.max_models, limits.max_memory_mb * 1024 * 1024, store_dir)
    except StoreRefused as exc:
        log.error("%s", exc.message)
        if args.listen:
            _announce(announce, {"error": exc.message})
        return None


def build(args: argparse.Namespace, store: ModelStore,
          **daemon: Any) -> tuple[Any, Any, Any, frozenset[str], threading.Event]:
    """The context, dispatcher, scheduler and control methods every transport shares;
    warm-up started. The methods come from their registry (api/registry.py): the server
    gets them as data, a method table and the names its readers answer themselves."""
    from .api.methods import rpc
    from .engine import warmup
    from .server import protocol
    from .server.scheduler import Scheduler

    limits = limits_of(args)
    ctx = WorkerContext(limits, store, test_methods=args.test_methods, threads=args.threads,
                        **daemon)
    warmup.start_warmup(ctx, enabled=not args.no_warmup)
    dispatcher = protocol.Dispatcher(rpc.table(ctx.test_methods), ctx)
    stopped = threading.Event()
    scheduler = Scheduler(ctx, dispatcher, stopped.set)
    ctx.scheduler = scheduler
    scheduler.start()
    return ctx, dispatcher, scheduler, rpc.control(), stopped


def serve_stdio(args: argparse.Namespace, store: ModelStore, protocol_in: BinaryIO,
                protocol_out: BinaryIO) -> int:
    from .server import lifeline
    from .server.connection import read_session
    from .server.protocol import LineWriter
    from .server.session import Session

    lifeline.watch(protocol_out.fileno())
    ctx, dispatcher, scheduler, control, stopped = build(args, store)
    session = Session(LineWriter(protocol_out), "stdio", at_end="finish", buffered=False,
                      when_full="wait")
    threading.Thread(target=read_session,
                     args=(protocol_in, session, ctx, dispatcher, scheduler, control),
                     name="scm-stdin", daemon=True).start()
    log.info("serving on stdio (pid %d, version %s)", ctx.pid, __version__)
    stopped.wait()
    return 0


def serve_daemon(args: argparse.Namespace, store: ModelStore, announce: BinaryIO) -> int:
    """Take the lock, bind, say so on stdout (then close it), serve until stopped, idle or
    unreachable; a clean exit removes the socket (if still ours) and clears the lock's record."""
    from .server import daemon_lock, listener
    from .server.daemon_log import log_to_file

    path: Path = args.listen.absolute()
    _lead_own_session()
    try:
        listener.prepare_directory(path.parent)
        lock, previous = daemon_lock.take_lock(path)
    except daemon_lock.AlreadyRunning as exc:
        _announce(announce, {"already_running": str(path), "pid": exc.pid})
        return 0
    except (OSError, listener.DirectoryRefused) as exc:
        _announce(announce, {"error": f"cannot use {path.parent}: {exc}"})
        return 1
    os.umask(0o077)  # its log files (wherever --log-file puts them) are its user's alone
    log_to_file(args.log_file or path.with_suffix(".log"))  # from here on, bind's lines too
    if previous is not None and previous.pid != os.getpid():
        daemon_lock.reap_orphans(previous)
    try:
        server = listener.bind(path)
        watch = listener.SocketWatch(path, args.socket_check_interval or None)
    except OSError as exc:
        _announce(announce, {"error": f"cannot listen on {path}: {exc}"})
        return 1
    try:
        _serve_socket(args, store, announce, path, server, watch)
    finally:
        server.close()
        if watch.ours():  # a replaced path names another daemon's socket now: left alone
            path.unlink(missing_ok=True)  # ours: we hold the lock until the process ends
    daemon_lock.clear_record(lock)  # a clean exit: its joblib processes stop with it
    os.close(lock)
    log.info("daemon stopped")
    return 0


def _serve_socket(args: argparse.Namespace, store: ModelStore, announce: BinaryIO, path: Path,
                  server: socket.socket, watch: SocketWatch) -> None:
    from .server import listener

    idle = args.idle_timeout or None
    ctx, dispatcher, scheduler, control, stopped = build(args, store, socket_path=str(path),
                                                          idle_timeout_s=idle)
    terminate = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminate.set())
    log.info("daemon serving on %s (pid %d, version %s)", path, ctx.pid, __version__)
    _announce(announce, {"listening": str(path), "pid": ctx.pid, "worker_version": __version__})
    listener.Listener(server, ctx, dispatcher, scheduler, idle, control=control, watch=watch,
                      max_connections=args.max_connections).serve(stopped, terminate)


def _lead_own_session() -> None:
    """A daemon leads its own session and process group, however it was started: no
    terminal's signals reach it, and its joblib children share its pid as their group
    id (what a successor reaps if this daemon is killed: daemon_lock.reap_orphans)."""
    if os.getsid(0) == os.getpid():
        return
    try:
        os.setsid()
    except OSError:  # already a group leader: its group id is its pid all the same
        pass


def _announce(stream: BinaryIO, message: dict[str, Any]) -> None:
    """The daemon's one line to whoever started it; then its stdout is closed."""
    try:
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()
        stream.close()
    except OSError:
        pass


def shutdown_children() -> None:
    """Stop joblib's loky workers so no child outlives the worker (it leaves by ``os._exit``,
    so loky's own exit handler never runs)."""
    from .server.lifeline import stop_children

    stop_children()


if __name__ == "__main__":
    sys.exit(main())
