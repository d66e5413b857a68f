"""Finding a Python X.Y that really runs: an explicit path, PATH, pyenv, then uv.

The order is scripts/find-python.sh's, plus ``uv python find`` where uv exists. A
candidate counts only if it runs and reports X.Y: a pyenv shim for a version that is not
activated exists on PATH and fails. Every probe runs from ``/`` and every Python with
``-I`` (``_isolated``): asked from the caller's directory, ``python -c "import json…"``
would import a ``json.py`` planted there, and ``uv python find`` would run the
directory's ``.venv/bin/python`` to learn its version.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._isolated import CWD, python_argv

# The base interpreter: a venv's python (e.g. the tool venv holding uv) resolves to the one it
# was made from, so the same Python always gives the same environment key.
_PROBE = (
    "import json, os, sys; exe = getattr(sys, '_base_executable', '') or sys.executable; "
    "print(json.dumps([os.path.abspath(exe), sys.version.split()[0]]))"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # full, e.g. 3.11.7
    how: str  # where it was found: "--python", "on PATH", "pyenv", "uv python find"


@dataclass(frozen=True)
class Search:
    """The interpreter found (or None) and why each earlier candidate was passed over."""

    found: Interpreter | None
    notes: list[str] = field(default_factory=list)


def run_quietly(
    argv: Sequence[str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str] | None:
    """Run a probe from ``CWD``; None if it cannot be run at all."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=CWD)
    except (OSError, subprocess.TimeoutExpired):
        return None


def probe(python: str, how: str) -> Interpreter | None:
    """The interpreter if ``python`` runs: its base interpreter's absolute path, and its version."""
    done = run_quietly(python_argv(python, "-c", _PROBE))
    if done is None or done.returncode != 0:
        return None
    try:
        path, version = json.loads(done.stdout)
    except ValueError:
        return None
    return Interpreter(str(path), str(version), how)


def find_python(version: str, explicit: str | None = None, uv: str | None = None) -> Search:
    """The first candidate that runs as ``version`` (e.g. "3.11").

    An explicit one is the only one."""
    if explicit is not None:
        found = probe(explicit, "--python")
        if found is not None and _is(found, version):
            return Search(found)
        return Search(None, [f"{explicit} does not run as Python {version}"])
    notes: list[str] = []
    for how, candidate in _candidates(version, uv):
        found = probe(candidate, how)
        if found is not None and _is(found, version):
            return Search(found, notes)
        shim = " (a pyenv shim?)" if "shims" in candidate else ""
        notes.append(f"{candidate} ({how}) does not run as Python {version}{shim}")
    if not notes:
        notes.append(f"python{version} is not on PATH, and neither pyenv nor uv knows it")
    return Search(None, notes)


def _is(found: Interpreter, version: str) -> bool:
    return found.version.startswith(version + ".")


def _candidates(version: str, uv: str | None) -> Iterator[tuple[str, str]]:
    """(how, path) pairs in lookup order, lazily.

    A source is asked only when the earlier ones fail."""
    name = f"python{version}"
    on_path = shutil.which(name)
    if on_path:
        yield "on PATH", on_path
    prefix = _first_line(["pyenv", "prefix", version]) if shutil.which("pyenv") else None
    if prefix:
        yield "pyenv", str(Path(prefix.split(":")[0]) / "bin" / name)
    found = _first_line([uv, "python", "find", "--no-config", version]) if uv is not None else None
    if found:
        yield "uv python find", found


def _first_line(argv: list[str]) -> str | None:
    done = run_quietly(argv)
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return done.stdout.strip().splitlines()[0]
