"""The worker a 3.13 suite drives: its interpreter (SCM_WORKER_PYTHON) and the fast flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The fast worker: no warm-up fit, the debug.* methods, models in memory only.
FAST_ARGS = ("--no-warmup", "--test-methods", "--no-store")


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
