"""Provisioned worker environments on disk: the data directory, keys, and completion marks.

Each environment is ``<data dir>/envs/<key>/``, a Python 3.11 virtualenv keyed by a hash
of the pins, the scm-worker version and the base interpreter (as pre-commit keys its hook
environments). Its manifest, ``scm-env.json``, is written last and atomically: it is the
completion mark. A directory without one is a build that was interrupted (or is still
running) and is never used. Reading this module's answers runs no subprocess, so
discovery stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

DATA_DIR_VAR: Final = "SCM_DATA_DIR"
MANIFEST: Final = "scm-env.json"


def data_dir() -> Path:
    """$SCM_DATA_DIR, else $XDG_DATA_HOME/scm-worker, else ~/.local/share/scm-worker."""
    if os.environ.get(DATA_DIR_VAR):
        return Path(os.environ[DATA_DIR_VAR]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "scm-worker"


def envs_dir() -> Path:
    return data_dir() / "envs"


def env_key(pins_digest: str, worker_version: str, interpreter: str) -> str:
    """The environment's name: same pins, version and base interpreter → same environment."""
    blob = json.dumps([pins_digest, worker_version, interpreter], separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def env_python(path: Path) -> Path:
    return path / "bin" / "python"


@dataclass(frozen=True)
class Manifest:
    """What a finished build recorded about itself."""

    key: str
    path: str
    worker_version: str
    pins_sha256: str
    base_python: str
    python_version: str
    installer: str
    build_seconds: float
    created: float
    # provision.Verdict.fingerprint as the build left it: a reuse compares it
    content_sha256: str = ""

    @property
    def python(self) -> Path:
        return env_python(Path(self.path))


def read_manifest(path: Path) -> Manifest | None:
    """The environment's manifest, or None if the build never finished (or it is not ours)."""
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        manifest = Manifest(**{**data, "path": str(path)})
    except (OSError, ValueError, TypeError):
        return None
    return manifest if manifest.python.exists() else None


def write_manifest(manifest: Manifest) -> None:
    """Mark the build complete: write aside, then rename over (atomic on POSIX)."""
    target = Path(manifest.path) / MANIFEST
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)


def env_dirs() -> list[Path]:
    """Every environment directory, finished or not."""
    root = envs_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir())


def finished() -> list[Manifest]:
    """Every complete environment, newest first."""
    found = [m for m in map(read_manifest, env_dirs()) if m is not None]
    return sorted(found, key=lambda m: m.created, reverse=True)


def matching(worker_version: str, pins_digest: str) -> list[Manifest]:
    """Complete environments this client may use: its own version and pins, newest first."""
    return [
        m for m in finished() if m.worker_version == worker_version and m.pins_sha256 == pins_digest
    ]
