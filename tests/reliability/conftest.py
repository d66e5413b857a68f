"""Fixtures for the reliability suite: real workers, raw or through the 3.13 client.

SCM_WORKER_PYTHON names the worker's Python 3.11 (tox's reliability env sets it); without
it the suite fails loudly instead of skipping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_support import RawWorker, StrayReplies
from scm_client import Worker
from support.daemon import Start, daemon_starter
from support.daemons import daemon_dir, no_daemon_by_default, socket_dir  # noqa: F401 - fixtures
from support.ordering import longest_files_first
from support.worker_env import FAST_ARGS, worker_python

#: durations side by side in make test (s): daemon_guards 168, faults 84, store_trust 72,
#: daemon_soak 69, security 67, malformed_input 66, orphans 42 of 674 in all
LONGEST = ("test_daemon_guards.py", "test_faults.py", "test_store_trust.py", "test_daemon_soak.py",
           "test_security.py", "test_malformed_input.py", "test_orphans.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first: under xdist (tox.ini: ``-n 2 --dist loadfile``) the short
    ones then even out where the two processes end."""
    longest_files_first(items, LONGEST)


@pytest.fixture(scope="session")
def python311() -> str:
    return worker_python()


@pytest.fixture
def make_worker(python311: str) -> Iterator[Callable[..., Worker]]:
    """``make_worker(**Worker kwargs)``; every Worker made is closed after the test."""
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("worker_args", FAST_ARGS)
        kwargs.setdefault("start_timeout", 120.0)
        worker = Worker(python311, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def start_daemon() -> Iterator[Start]:
    """``start_daemon(*flags, path=None, wait=True)``: daemons of the worker env in a short
    private directory (``start_daemon.directory``), every one stopped after the test."""
    with daemon_starter(worker_python()) as start:
        yield start


@pytest.fixture
def raw_worker(python311: str) -> Iterator[Callable[..., RawWorker]]:
    """``raw_worker(*flags)``: a worker on raw pipes; all are stopped after the test."""
    started: list[RawWorker] = []

    def spawn(*args: str, **kwargs: Any) -> RawWorker:
        worker = RawWorker(*args, **kwargs)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture
def stray_replies() -> Iterator[StrayReplies]:
    handler = StrayReplies()
    logger = logging.getLogger("scm_client.worker")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
