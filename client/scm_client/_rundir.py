"""Where the user's daemons live: one private directory, found again by every client.

``$SCM_DAEMON_DIR`` if set (tests point it at a temporary directory), else
``$XDG_RUNTIME_DIR/scm-worker/``, else ``<XDG_CACHE_HOME or ~/.cache>/scm-worker/run/``.
A Unix socket path is limited to 107 bytes: when a socket there would be longer, the
sockets go to a directory under /tmp instead, of a random name (``mkdtemp``: created
0700 by us, never one another user made first), recorded in the preferred directory so
the next client finds the same one. A recorded directory that is gone, or no longer
ours and private (/tmp cleaned, then someone else took the name), is replaced.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from .errors import WorkerStartError

log = logging.getLogger("scm_client.daemon")

DIR_ENV: Final = "SCM_DAEMON_DIR"
#: a Unix socket path is at most 107 bytes (sun_path is 108, with its NUL)
SUN_PATH_MAX: Final = 107
FALLBACK_PARENT: Final = Path("/tmp")
#: the file in the preferred directory that names its /tmp stand-in
RECORD: Final = "tmp-dir"


def runtime_dir(name_length: int) -> Path:
    """The private directory for sockets whose names are ``name_length`` bytes long."""
    preferred = private_dir(preferred_dir())
    if len(os.fsencode(preferred)) + 1 + name_length <= SUN_PATH_MAX:
        return preferred
    log.debug("%s is too long for a Unix socket path; using a directory in %s",
              preferred, FALLBACK_PARENT)
    return _fallback(preferred)


def preferred_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "scm-worker"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "scm-worker" / "run"


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter, or WorkerStartError saying why not."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise WorkerStartError(f"cannot create the daemon directory {path}: {exc}") from exc
    if not path.is_dir() or path.is_symlink():
        raise WorkerStartError(f"the daemon directory {path} is not a directory")
    if info.st_uid != os.getuid():
        raise WorkerStartError(f"the daemon directory {path} belongs to uid {info.st_uid}, "
                               f"not to this user ({os.getuid()}): set {DIR_ENV} to a "
                               f"directory of yours")
    if info.st_mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as exc:
            raise WorkerStartError(f"the daemon directory {path} is open to other users "
                                   f"(mode {info.st_mode & 0o777:o}) and cannot be made 0700: "
                                   f"{exc}") from exc
    return path


def _fallback(preferred: Path) -> Path:
    """The recorded /tmp directory if it is still ours and private, else a new one recorded.

    The record is locked while it is read and written: clients starting at once agree.
    """
    record = preferred / RECORD
    try:
        fd = os.open(record, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise WorkerStartError(f"cannot open {record}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        recorded = _read(fd)
        if recorded is not None and _ours_and_private(recorded):
            return recorded
        if recorded is not None:
            log.warning("%s (recorded in %s) is gone or not a private directory of ours: "
                        "making a new one", recorded, record)
        made = Path(tempfile.mkdtemp(prefix=f"scm-worker-{os.getuid()}-", dir=FALLBACK_PARENT))
        _write(fd, made)
        return made
    except OSError as exc:
        raise WorkerStartError(f"cannot make a daemon directory in {FALLBACK_PARENT}: "
                               f"{exc}") from exc
    finally:
        os.close(fd)


def _read(fd: int) -> Path | None:
    text = os.read(fd, 4096).decode(errors="replace").strip()
    return Path(text) if text.startswith("/") else None


def _write(fd: int, directory: Path) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, os.fsencode(directory) + b"\n", 0)


def _ours_and_private(directory: Path) -> bool:
    """A real directory (not a link to one), owned by this user, closed to everyone else."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & 0o077)
