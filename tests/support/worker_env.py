"""The worker a 3.13 suite drives: its interpreter (SCM_WORKER_PYTHON) and the fast flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The fast worker: no warm-up fit, the debug.* methods, models in memory only, and one
#: thread. ``make test`` runs two suites side by side and e2e and reliability on two xdist
#: processes each, so up to four workers share the two cores: processes × threads ≤ cores
#: means one thread apiece. It also spares each worker joblib's loky processes (with
#: n_jobs > 1 the first fit spawns them: ~2.5 s of a 4.5 s first fit). Answers do not
#: depend on it (seeds are per node); the tests of the multi-process path ask for
#: ``--threads 2`` themselves.
ONE_THREAD = ("--threads", "1")
#: two threads: a fit's node tasks run in joblib's loky processes (the default on 2 cores),
#: for the tests of those processes
JOBLIB_THREADS = ("--threads", "2")
FAST_ARGS = ("--no-warmup", "--test-methods", "--no-store", *ONE_THREAD)


def worker_python() -> str:
    """The worker's interpreter; a missing one fails loudly (never a silent skip)."""
    path = os.environ.get("SCM_WORKER_PYTHON")
    if not path:
        pytest.fail(
            "SCM_WORKER_PYTHON is not set: point it at the worker's Python 3.11 with DoWhy installed "
            "(e.g. .venv-worker/bin/python after `make venvs`; tox's e2e and reliability envs set it)",
            pytrace=False,
        )
    if not Path(path).exists():
        pytest.fail(f"SCM_WORKER_PYTHON={path} does not exist", pytrace=False)
    return path


def _ask(python: str, expression: str) -> str:
    """What ``expression`` prints in ``python``, run isolated from every directory but /."""
    import subprocess

    done = subprocess.run([python, "-I", "-c", f"print({expression})"], capture_output=True,
                          text=True, cwd="/", timeout=60, check=True)
    return done.stdout.strip()


def second_environment(python: str, directory: Path, source: Path | None = None) -> Path:
    """Another worker environment in ``directory``: its own ``sys.prefix``, the same packages.

    A venv of ``python``'s base interpreter (seconds, no install) whose one ``.pth`` file
    puts ``python``'s site-packages on its path, and with ``source`` a copy of
    ``scm_worker`` in front of them: an editable checkout whose source a test may change.
    Returns the new environment's interpreter.
    """
    import shutil
    import subprocess

    base = _ask(python, "__import__('sys')._base_executable")
    site = _ask(python, "__import__('sysconfig').get_paths()['purelib']")
    subprocess.run([base, "-I", "-m", "venv", "--without-pip", str(directory)], cwd="/",
                   check=True, timeout=120, capture_output=True)
    new_python = directory / "bin" / "python"
    lines = []
    if source is not None:
        copied = shutil.copytree(Path(_ask(python, "__import__('scm_worker').__path__[0]")),
                                 source / "scm_worker",
                                 ignore=shutil.ignore_patterns("__pycache__"))
        lines.append(str(Path(copied).parent))
    lines.append(f"import site; site.addsitedir({site!r})")
    own_site = _ask(str(new_python), "__import__('sysconfig').get_paths()['purelib']")
    (Path(own_site) / "scm-test-second-env.pth").write_text("\n".join(lines) + "\n")
    return new_python
