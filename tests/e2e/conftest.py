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
from support.ordering import longest_files_first
from support.worker_env import FAST_ARGS
from support.worker_env import worker_python as find_worker_python

#: durations side by side in make test (s): install 607, cluster 166, store 95, daemon 87,
#: cwd_isolation 68, report 67, incremental 54, compat 46, cli_progress 43 of 1,496 in all
LONGEST = ("test_install.py", "test_cluster.py", "test_store.py", "test_daemon.py",
           "test_cwd_isolation.py", "test_report.py", "test_incremental.py", "test_compat.py",
           "test_cli_progress.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_install.py first (its builds are the suite's longest file by far), then the next
    longest: under xdist (tox.ini: ``-n 2 --dist loadfile``) the builds start at once on one
    process while the other files fill the second, and the short files come last."""
    longest_files_first(items, LONGEST)


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
