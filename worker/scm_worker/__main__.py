"""Entry point: flags, logging to stderr, the stdout guard, warm-up, the serve loop."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

from . import __version__
from .context import WorkerContext
from .limits import Limits
from .warmup import limit_threads

log = logging.getLogger("scm_worker")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m scm_worker", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--log-level", default=os.environ.get("SCM_WORKER_LOG_LEVEL", "INFO"))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS/OpenMP and joblib jobs (default: library defaults)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up fit")
    parser.add_argument("--test-methods", action="store_true", help="expose debug.* methods")
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
    protocol_in = os.fdopen(os.dup(0), "rb")  # buffered: readline must not read byte by byte
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
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="scm-worker[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    if args.threads is not None:
        limit_threads(args.threads)
    protocol_in, protocol_out = guard_stdout()

    from . import lifeline, methods, protocol, warmup

    lifeline.watch(protocol_out.fileno())
    from .persistence import default_store_dir
    from .store import ModelStore

    limits = Limits(**{k: getattr(args, k) for k in Limits().as_dict()})
    writer = protocol.LineWriter(protocol_out)
    store_dir = None if args.no_store else (args.store or default_store_dir())
    store = ModelStore(limits.max_models, limits.max_memory_mb * 1024 * 1024, store_dir)
    ctx = WorkerContext(limits, store, writer,
                        test_methods=args.test_methods, threads=args.threads)
    warmup.start_warmup(ctx, enabled=not args.no_warmup)
    dispatcher = protocol.Dispatcher(methods.build_methods(ctx), ctx)
    log.info("serving (pid %d, version %s)", ctx.pid, __version__)
    protocol.serve(
        protocol_in, writer, dispatcher, limits.max_line_bytes, lambda: ctx.stop_requested
    )
    shutdown_children()
    return 0


def shutdown_children() -> None:
    """Stop joblib's loky workers so no child outlives the worker."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None) if loky else None
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


if __name__ == "__main__":
    sys.exit(main())
