"""The ``scm`` command run as a user runs it, in this interpreter, against the worker that
SCM_WORKER_PYTHON names (the e2e env sets it): one runner for the CLI's table tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHAIN = str(FIXTURES / "linear_chain.json")


def scm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    if not os.environ.get("SCM_WORKER_PYTHON"):
        pytest.fail("SCM_WORKER_PYTHON must name the worker's Python 3.11 interpreter")
    return subprocess.run([sys.executable, "-m", "scm_client.cli", *args], capture_output=True,
                          text=True, timeout=timeout)
