"""Finding the worker's Python 3.11, in order: argument, $SCM_WORKER_PYTHON, the .venv-worker/
of the checkout this client is imported from, then an environment ``scm setup`` provisioned
for this client's version.

Never from the directory the user stands in: a ``.venv-worker/`` there is whatever the
directory's author put in it (running ``scm`` inside a cloned repository must be as safe
as ``git status`` there). A checkout's environment is found from the project's own
location: the source tree this package was imported from, when it is an editable checkout.

Nothing here installs anything unless the caller opted in (``auto_setup=True`` or
``SCM_AUTO_SETUP=1``); then a missing environment is provisioned, with progress on stderr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import _envs, _pins, provision
from ._version import __version__
from .errors import WorkerNotFound, WorkerStartError

ENV_VAR = "SCM_WORKER_PYTHON"
VENV = ".venv-worker"


@dataclass(frozen=True)
class Located:
    """The worker interpreter, how it was found, and its manifest if ``scm setup`` built it."""

    python: str
    how: str
    manifest: _envs.Manifest | None = None


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def is_checkout(root: Path) -> bool:
    """A source checkout of this project (where `make venvs` exists), not site-packages."""
    return (root / "Makefile").is_file() and (root / "worker" / "scm_worker").is_dir()


def candidate_venvs() -> list[Path]:
    """The .venv-worker/ of the checkout this client runs from, if it runs from one."""
    root = project_root()
    return [root / VENV] if is_checkout(root) else []


def locate(
    explicit: str | os.PathLike[str] | None = None, *, auto_setup: bool | None = None
) -> Located:
    """The worker interpreter by the order above; WorkerNotFound names `scm setup`."""
    if explicit is not None:
        return Located(_require_file(Path(explicit), "the python argument"), "--python")
    if os.environ.get(ENV_VAR):
        return Located(_require_file(Path(os.environ[ENV_VAR]), ENV_VAR), f"${ENV_VAR}")
    for venv in candidate_venvs():
        python = venv / "bin" / "python"
        if python.exists():
            return Located(str(python), f"{VENV}/ of {venv.parent}")
    ready = _envs.matching(__version__, _pins.pins_digest())
    if ready:
        return Located(str(ready[0].python), "provisioned by scm setup", ready[0])
    if provision.auto_setup_enabled(auto_setup):
        manifest, _ = provision.ensure()
        return Located(str(manifest.python), "provisioned by auto-setup", manifest)
    raise WorkerNotFound(not_found_message())


def find_worker_python(
    explicit: str | os.PathLike[str] | None = None, *, auto_setup: bool | None = None
) -> str:
    return locate(explicit, auto_setup=auto_setup).python


def fix_hint() -> str:
    """What to run when there is no worker environment: `make venvs` only inside a checkout."""
    checkout = any(is_checkout(venv.parent) for venv in candidate_venvs())
    return (
        "run `scm setup`"
        + (" (or `make venvs` in this checkout)" if checkout else "")
        + f", or set {ENV_VAR} to a Python 3.11 with the pinned worker stack"
    )


def not_found_message() -> str:
    """Why nothing was found, where it looked (other versions' environments named), what to run."""
    digest = _pins.pins_digest()
    others = [
        m for m in _envs.finished() if (m.worker_version, m.pins_sha256) != (__version__, digest)
    ]
    stale = "".join(
        f"; {m.path} is for scm-worker {m.worker_version}"
        + (" with other pins" if m.worker_version == __version__ else "")
        for m in others[:3]
    )
    places = [*map(str, candidate_venvs()), str(_envs.envs_dir())]
    return (
        f"no worker environment for scm-worker {__version__} found: {fix_hint()} "
        f"(looked in {' and '.join(places)}{stale})"
    )


def _require_file(path: Path, source: str) -> str:
    """``path`` made absolute (symlinks kept: a venv's python is one), as the caller's
    directory resolves it: the worker is started from ``/``."""
    if not path.exists():
        raise WorkerStartError(f"worker interpreter from {source} does not exist: {path}")
    return os.path.abspath(path)
