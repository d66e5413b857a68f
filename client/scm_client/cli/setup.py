"""`scm setup`: build, check or remove the worker environment; and the offer to build one.

Every other command that needs a worker calls ``offer_setup`` first: when no environment
is found it asks on a terminal, builds without asking with ``--yes`` (or
``SCM_AUTO_SETUP=1``), and otherwise fails with the message naming `scm setup`.
The environment's python goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Final

from .. import _envs, provision
from .._locate import ENV_VAR, locate
from ..errors import WorkerNotFound
from .common import add_global_options

HELP: Final = "build (or reuse) the worker's Python 3.11 environment for this client"
DESCRIPTION: Final = f"""\
{HELP}.

Finds a Python 3.11 (--python, else python3.11 on PATH if it runs, else pyenv, else
`uv python find`), then builds a virtualenv in {_envs.data_dir()}/envs/KEY
(${_envs.DATA_DIR_VAR} moves it) with the pinned DoWhy stack and this client's own
scm-worker, with uv when it is installed and pip otherwise, and checks it. KEY hashes
the pins, the scm-worker version and the interpreter, so a second run reuses it.
Prints the environment's python on stdout."""

#: Commands that work without a worker environment (doctor reports on a missing one).
NO_WORKER_COMMANDS: Final = frozenset({"setup", "doctor"})


def register(subparsers: Any) -> None:
    """`scm setup`; its own --python names the 3.11 to build from, not a worker interpreter."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "setup",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, suppress=True, own_python=True)
    parser.add_argument(
        "--python",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="build from this Python 3.11 instead of searching for one",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--force", action="store_true", help="rebuild the environment even if it is ready"
    )
    action.add_argument(
        "--check",
        action="store_true",
        help="print the environment's path and verdict (pins, DoWhy import); build nothing",
    )
    action.add_argument(
        "--remove", action="store_true", help="delete every provisioned environment"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    python = getattr(args, "python", None)
    if args.remove:
        return _remove()
    if args.check:
        return _check(python)
    manifest, _ = provision.ensure(python, force=args.force)
    print(manifest.python)
    return 0


def _check(python: str | None) -> int:
    target = provision.plan(python)
    manifest = _envs.read_manifest(target.path)
    if manifest is None:
        print(f"{target.path}: not built (run `scm setup`)")
        return 1
    verdict = provision.check(manifest.python, full=True)
    print(f"{target.path}: {verdict.text()}")
    return 0 if verdict.ok else 1


def _remove() -> int:
    removed = provision.remove_all()
    for path in removed:
        print(f"removed {path}")
    if not removed:
        print(f"no provisioned environments in {_envs.envs_dir()}")
    return 0


def offer_setup(args: argparse.Namespace) -> None:
    """Before a command that needs a worker: build a missing environment if the user agrees."""
    if (
        args.command in NO_WORKER_COMMANDS
        or getattr(args, "python", None)
        or os.environ.get(ENV_VAR)
    ):
        return
    try:
        locate()
        return
    except WorkerNotFound as exc:
        if not (getattr(args, "yes", False) or _confirm(str(exc))):
            raise WorkerNotFound(f"{exc}\n(or rerun with --yes to build it now)") from None
    provision.ensure()


def _confirm(reason: str) -> bool:
    """Ask on a terminal only; without one (CI, pipes) the answer is no."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    print(
        f"scm: {reason.split(':')[0]}.\n"
        "Build it now with `scm setup` (seconds with uv, minutes with pip)? [Y/n] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    answer = sys.stdin.readline().strip().lower()
    return answer in {"", "y", "yes"}
