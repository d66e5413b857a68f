"""Whether a model store may be used, decided as ssh's StrictModes decides for ``~/.ssh``.

A store holds pickles and the key that authenticates them: whoever can write its
directory or its key can plant a model that runs their code at the next load. So a
store is used only when its directory and key are the user's and nobody else can
write them, and every directory above it, up to the home directory (or ``/``), belongs
to the user or root and is not writable by others (a sticky directory such as ``/tmp``
is: nobody else can rename or remove an entry they do not own). Writable by a group is
accepted only when that group is the user's alone (Debian's ssh rule, for the umask 002
of user-private groups). The key is opened without following a link and checked on the
opened file (``fstat``), so what is checked is what is read.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from ..errors import PERMISSION_DENIED, WorkerError

#: how a worker whose store is refused exits (sysexits' EX_CONFIG)
EXIT_STORE_REFUSED = 78


class StoreRefused(WorkerError):
    """The store directory, a parent of it, or its key could be changed by someone else."""

    def __init__(self, path: Path, reason: str, fix: str) -> None:
        super().__init__(
            PERMISSION_DENIED,
            f"refusing the model store: {path} {reason}; fix: {fix}",
            {"path": str(path), "reason": reason, "fix": fix},
        )


def make_private_directory(directory: Path) -> None:
    """Create the store directory and any missing parent 0700 (never with the umask's
    group bits, which the check below would then refuse)."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def check_directory(directory: Path) -> None:
    """The store directory itself (the user's) and its parents (the user's or root's)."""
    real = directory.resolve()
    info = real.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise StoreRefused(real, "is not a directory", "pass --store a directory")
    if info.st_uid != os.getuid():
        raise not_yours(real, info)
    if writable_by_others(info):
        raise StoreRefused(real, f"is writable by group or others (mode {mode(info)})",
                           f"chmod go-w {real}")
    for parent in parents_to_check(real):
        check_parent(parent)


def check_parent(path: Path) -> None:
    info = path.stat()
    if info.st_uid not in (os.getuid(), 0):
        raise not_yours(path, info)
    if writable_by_others(info) and not info.st_mode & stat.S_ISVTX:
        raise StoreRefused(path, f"(a parent of the store) is writable by group or others "
                           f"(mode {mode(info)})", f"chmod go-w {path}, or --store elsewhere")


def parents_to_check(real: Path) -> list[Path]:
    """Up to the home directory, inclusive, when the store is under it; else up to /."""
    try:
        home: Path | None = Path.home().resolve()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry: check up to /
        home = None
    parents = list(real.parents)
    if home is not None and home in parents:
        return parents[: parents.index(home) + 1]
    return parents


def check_key(fd: int, path: Path) -> None:
    """The opened key: a regular file of the user's that no one else may read or write."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise StoreRefused(path, "is not a regular file",
                           f"remove it (rm {path}) and a new key is made; models saved under "
                           "the old key are then refused")
    if info.st_uid != os.getuid():
        raise not_yours(path, info)
    if info.st_mode & 0o077:
        raise StoreRefused(path, f"is open to group or others (mode {mode(info)})",
                           f"chmod 600 {path}")


def symlinked_key(path: Path) -> StoreRefused:
    return StoreRefused(path, "is a symbolic link",
                        f"replace the link by the key file itself (mode 0600), or remove it "
                        f"(rm {path}) and a new key is made; models saved under the old key "
                        "are then refused")


def not_yours(path: Path, info: os.stat_result) -> StoreRefused:
    return StoreRefused(path, f"belongs to {user_name(info.st_uid)} (uid {info.st_uid}), "
                        f"not to you (uid {os.getuid()})",
                        f"chown {user_name(os.getuid())} {path}, or start the worker with "
                        "--store DIR on a directory of your own")


def writable_by_others(info: os.stat_result) -> bool:
    if info.st_mode & stat.S_IWOTH:
        return True
    return bool(info.st_mode & stat.S_IWGRP) and not group_is_private(info.st_gid)


def group_is_private(gid: int) -> bool:
    """The group has exactly one member, this user (as primary group or listed)."""
    try:
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    primary = {user.pw_name for user in pwd.getpwall() if user.pw_gid == gid}
    members = primary | set(group.gr_mem)
    return members == {user_name(os.getuid())}


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"
