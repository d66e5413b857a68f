"""Authenticated model files: HMAC-SHA256 over every byte, verified before unpickling.

A file is ``MAGIC + tag + payload`` where ``tag = HMAC(key, model_id + payload)``: a
flipped byte, a truncated file, another store's key, or a file renamed to another id
all fail verification, and such a file is never unpickled. The key is 32 random bytes
created once per store directory with mode 0600; the directory and the key are used only
when no one else could have changed them (store_trust.py). The fit cache's entries
(``KEY.ref``, naming the model a fit request produced) and incremental refits' node
entries (``KEY.node``, naming the model that holds a node's fit) carry a tag over their
kind, name and content, so one written without the key is never followed. Writes go to
a temporary file in the same directory, are fsynced, then renamed into place, so a crash
mid-write leaves either the old file or none, never half of one.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import pickle
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from ..errors import STORE_CORRUPT, WorkerError
from .store_trust import check_directory, check_key, make_private_directory, symlinked_key

log = logging.getLogger(__name__)

MAGIC: Final = b"SCMW1\n"
TAG_BYTES: Final = 32
KEY_FILE: Final = "store.key"
SUFFIX: Final = ".model"
REF_SUFFIX: Final = ".ref"
#: the kinds of entry a store keeps by key, and their suffixes: the fit cache's (a request's
#: key → its model) and incremental refits' (a node's key → the model holding its fit)
REF_KINDS: Final = {"fit": REF_SUFFIX, "node": ".node"}
#: a ref is ``model_id tag``: 18 + 1 + 64 characters; anything longer is not one
REF_MAX_BYTES: Final = 128


def default_store_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scm-worker" / "models"


class ModelFiles:
    """One directory of authenticated model files, named by model id only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        make_private_directory(directory)
        check_directory(directory)
        self._key = load_or_create_key(directory / KEY_FILE)

    def path(self, model_id: str) -> Path:
        return self.directory / f"{model_id}{SUFFIX}"

    def exists(self, model_id: str) -> bool:
        return self.path(model_id).exists()

    def ids(self) -> list[str]:
        # not the hidden ".tmp-*" files a kill between write and rename leaves behind
        return sorted(p.name.removesuffix(SUFFIX) for p in self.directory.glob(f"*{SUFFIX}")
                      if not p.name.startswith("."))

    def write_payload(self, model_id: str, payload: bytes) -> int:
        """Write an object already pickled (the store pickles a new model once, to size it)."""
        atomic_write(self.path(model_id), MAGIC + self._tag(model_id, payload) + payload)
        return len(payload)

    def read(self, model_id: str) -> Any:
        """Unpickle only after the tag verifies; otherwise -32006 and nothing runs."""
        blob = self.path(model_id).read_bytes()
        header = len(MAGIC) + TAG_BYTES
        if len(blob) < header or not blob.startswith(MAGIC):
            raise corrupt(model_id, "not a model file or truncated")
        tag, payload = blob[len(MAGIC):header], blob[header:]
        if not hmac.compare_digest(tag, self._tag(model_id, payload)):
            raise corrupt(
                model_id, "authentication failed (modified, truncated or from another store)"
            )
        return pickle.loads(payload)

    def delete(self, model_id: str) -> bool:
        try:
            self.path(model_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def stat(self, model_id: str) -> os.stat_result:
        return self.path(model_id).stat()

    def write_ref(self, key: str, model_id: str, kind: str = "fit") -> None:
        """An entry of ``kind`` (``REF_KINDS``): the model id and a tag over the kind, the key
        and the id, so an entry is never taken for another kind's or another key's."""
        tag = self._ref_tag(kind, key, model_id).hex()
        atomic_write(self._ref_path(kind, key), f"{model_id} {tag}".encode())

    def read_ref(self, key: str, kind: str = "fit") -> str | None:
        """The model id of an entry whose tag verifies; None for no entry or a refused one."""
        text = read_small(self._ref_path(kind, key), REF_MAX_BYTES)
        if text is None:
            return None
        model_id, _, tag = text.decode(errors="replace").strip().partition(" ")
        if hmac.compare_digest(tag.encode(), self._ref_tag(kind, key, model_id).hex().encode()):
            return model_id
        log.warning("%s entry %s%s failed authentication; ignored", kind, key, REF_KINDS[kind])
        return None

    def _ref_path(self, kind: str, key: str) -> Path:
        return self.directory / f"{key}{REF_KINDS[kind]}"

    def _tag(self, model_id: str, payload: bytes) -> bytes:
        return hmac.new(self._key, model_id.encode() + b"\0" + payload, hashlib.sha256).digest()

    def _ref_tag(self, kind: str, key: str, model_id: str) -> bytes:
        # "ref\0" first: no model file's tag (over "m-...\0" + payload) is ever a ref's; the
        # fit cache's entries keep the tag they always had, a node's names its kind too
        prefix = b"ref\0" if kind == "fit" else b"ref\0" + kind.encode() + b"\0"
        message = prefix + key.encode() + b"\0" + model_id.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()


def corrupt(model_id: str, reason: str) -> WorkerError:
    return WorkerError(
        STORE_CORRUPT,
        f"Stored model {model_id} refused: {reason}; it was not loaded",
        {"model_id": model_id, "reason": reason},
    )


def load_or_create_key(path: Path) -> bytes:
    """A new key, created 0600 where nothing (not even a link) exists, or the existing one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return read_key(path)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def read_key(path: Path) -> bytes:
    """Read an existing key, checked on the opened file; another worker may be writing
    it this very moment."""
    fd = open_no_follow(path)
    if fd is None:
        raise symlinked_key(path)
    try:
        check_key(fd, path)
        for _ in range(20):
            key = os.pread(fd, 33, 0)
            if len(key) == 32:
                return key
            time.sleep(0.05)
    finally:
        os.close(fd)
    raise WorkerError(STORE_CORRUPT, f"store key {path} is damaged", {"reason": "bad key"})


def open_no_follow(path: Path) -> int | None:
    """A read-only fd on ``path`` itself; None when it is a symbolic link. Non-blocking,
    so a FIFO planted there cannot hang the open (the caller's fstat refuses it)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise


def read_small(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file, not through a link; None otherwise."""
    try:
        fd = open_no_follow(path)
    except OSError:
        return None
    if fd is None:
        return None
    try:
        info = os.fstat(fd)
        return os.read(fd, limit) if stat.S_ISREG(info.st_mode) else None
    except OSError:
        return None
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
