"""The Python 3.13 client driving the real Python 3.11 worker.

The worker interpreter comes from SCM_WORKER_PYTHON, which CI (tox's e2e env) always
sets: without it these tests fail loudly rather than skip, so a misconfigured run can
never pass by testing nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import Worker

#: The fast worker: no warm-up fit, the debug.* methods, models in memory only.
FAST_ARGS = ("--no-warmup", "--test-methods", "--no-store")


@pytest.fixture(scope="session")
def worker_python() -> str:
    path = os.environ.get("SCM_WORKER_PYTHON")
    if not path:
        pytest.fail(
            "SCM_WORKER_PYTHON is not set: point it at the worker's Python 3.11 with DoWhy installed "
            "(e.g. .venv-worker/bin/python after `make venvs`)",
            pytrace=False,
        )
    if not Path(path).exists():
        pytest.fail(f"SCM_WORKER_PYTHON={path} does not exist", pytrace=False)
    return path


@pytest.fixture
def make_worker(worker_python: str) -> Iterator[Callable[..., Worker]]:
    """Factory for Workers (found through SCM_WORKER_PYTHON); every one is closed after the test."""
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("worker_args", FAST_ARGS)
        worker = Worker(**kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Worker:
    return make_worker()
