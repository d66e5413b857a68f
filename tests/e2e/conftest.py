"""The Python 3.13 client driving the real Python 3.11 worker.

The worker interpreter comes from SCM_WORKER_PYTHON, which CI (tox's e2e env) always
sets: without it these tests fail loudly rather than skip, so a misconfigured run can
never pass by testing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scm_client import Worker
from support.daemons import cli_daemon, daemon_dir, no_daemon_by_default, socket_dir  # noqa: F401 - fixtures
from support.worker_env import FAST_ARGS
from support.worker_env import worker_python as find_worker_python


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_install.py first (its builds are the suite's longest file by far): under xdist
    (tox.ini: ``-n 2 --dist loadfile``) it then starts at once on one process while the
    other files fill the second, instead of starting late and running alone at the end."""
    items.sort(key=lambda item: item.path.name != "test_install.py")  # stable: the rest keep their order


@pytest.fixture(scope="session")
def worker_python() -> str:
    return find_worker_python()


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
