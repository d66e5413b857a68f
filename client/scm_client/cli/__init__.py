"""The `scm` command line: the parser assembled from the command modules, and ``main``.

Each command family is a module with ``register(subparsers)``; adding a command is adding
its module to ``COMMANDS``. What the commands share (input files, --do parsing, options,
exit codes, opening a worker) is in common.py, which imports nothing from here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import _format
from ..errors import WorkerError
from . import batch, daemon, demo, doctor, evaluation, fit, models, questions, report, setup
from .common import EPILOG, EXIT_USAGE, InputError, add_global_options, exit_code, fail

#: the command modules, in the order `scm --help` lists them
COMMANDS = (doctor, setup, fit, evaluation, demo, batch, models, questions, report, daemon)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scm", description="Fit and query structural causal models with the scm-worker "
        "(DoWhy) process.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_global_options(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


class _WorkerLines(logging.Filter):
    """Without -v, the worker's own log lines (relayed from its stderr) stay out of the way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("scm-worker[")


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("scm: %(levelname)s: %(message)s"))
        handler.addFilter(_WorkerLines())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler],
                        force=True)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # ✓/✗/R² on a terminal that cannot show them
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        setup.offer_setup(args)
        return int(args.handler(args))
    except InputError as exc:
        return fail(f"error: {exc}", EXIT_USAGE)
    except WorkerError as exc:
        return fail(_format.error_text(exc), exit_code(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


__all__ = ["COMMANDS", "build_parser", "main"]
