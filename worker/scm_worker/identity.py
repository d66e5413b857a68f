"""Who this worker is: its interpreter, its environment and a digest of its own source.

A daemon is shared by every client of a user, so which code it runs must be a fact, not
a hope. The client asks an environment for its identity before it connects
(``python -I -m scm_worker.identity``, run from ``/``: nothing of DoWhy is imported and
nothing of the caller's directory either) and names the daemon's socket by its
``environment_key``: two environments, or one whose source changed, never share a daemon.
A daemon reports the identity it started with in ``status``, and ``stale`` once its
files no longer match that digest (an edited checkout: the next client starts a new one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from . import __version__

#: where ``scm_worker`` was imported from: the package directory of this very file
PACKAGE_DIR: Final = Path(__file__).resolve().parent
#: hex digits of the environment key in the socket's name (64 bits)
KEY_LENGTH: Final = 16


def source_digest(root: Path = PACKAGE_DIR) -> str:
    """sha256 over every file of the package, each by its relative path and content.

    Bytecode caches are left out: they follow the source, and an interpreter that cannot
    write them must not look different from one that can.
    """
    digest = hashlib.sha256()
    for path in sorted(_source_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _source_files(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        yield from (Path(directory, name) for name in files if not name.endswith(".pyc"))


def environment_key(prefix: str, version: str, digest: str) -> str:
    """The daemon's key: the environment (its resolved prefix), the version, the source."""
    text = "\0".join((os.path.realpath(prefix), version, digest))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def describe() -> dict[str, Any]:
    """This interpreter's identity as the wire shows it (``status`` and the client's probe)."""
    digest = source_digest()
    return {
        "python": sys.executable,
        "prefix": sys.prefix,
        "worker_version": __version__,
        "worker_path": str(PACKAGE_DIR),
        "source_digest": digest,
        "environment_key": environment_key(sys.prefix, __version__, digest),
    }


@functools.cache
def at_start() -> dict[str, Any]:
    """The identity as the process started: ``__main__`` asks before it imports the rest."""
    return describe()


def current() -> dict[str, Any]:
    """The identity the process started with, and ``stale``: its files changed since (or
    can no longer be read), so a new process would run other code than this one does."""
    started = at_start()
    try:
        stale = source_digest() != started["source_digest"]
    except OSError:
        stale = True
    return {**started, "stale": stale}


if __name__ == "__main__":
    print(json.dumps(describe()))
