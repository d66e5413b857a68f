"""Finding the worker's Python 3.11: argument, then SCM_WORKER_PYTHON, then .venv-worker/."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WorkerStartError

ENV_VAR = "SCM_WORKER_PYTHON"
VENV = ".venv-worker"


def candidate_venvs() -> list[Path]:
    """The project checkout this client runs from, then the current directory."""
    project_root = Path(__file__).resolve().parents[2]
    return list(dict.fromkeys([project_root / VENV, Path.cwd().resolve() / VENV]))


def find_worker_python(explicit: str | os.PathLike[str] | None = None) -> str:
    if explicit is not None:
        return _require_file(Path(explicit), "the python argument")
    if os.environ.get(ENV_VAR):
        return _require_file(Path(os.environ[ENV_VAR]), ENV_VAR)
    for venv in candidate_venvs():
        python = venv / "bin" / "python"
        if python.exists():
            return str(python)
    searched = ", ".join(str(v) for v in candidate_venvs())
    raise WorkerStartError(
        f"no worker interpreter found: name one (Worker(python=...), scm --python), "
        f"set {ENV_VAR}, or create {VENV}/ with 'make venvs' (looked in {searched})"
    )


def _require_file(path: Path, source: str) -> str:
    if not path.exists():
        raise WorkerStartError(f"worker interpreter from {source} does not exist: {path}")
    return str(path)
