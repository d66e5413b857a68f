"""OpenMP capped at the free cores while another process keeps a core busy (real processes).

The cap is read from threadpoolctl inside the block, the way the predictions see it; the
busy neighbour is a real child process spinning, so the kernel's own running count is
what the worker reads.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime the predictions use)
from scm_worker.engine import contention
from threadpoolctl import threadpool_info, threadpool_limits

CORES = contention._cores()


def openmp_threads() -> int:
    pools = [p for p in threadpool_info() if p["user_api"] == "openmp"]
    assert pools, "no OpenMP runtime loaded"
    return min(p["num_threads"] for p in pools)


@pytest.fixture
def busy_neighbours() -> Iterator[int]:
    """As many spinning processes as there are cores, so none is left free."""
    spin = "print('spinning', flush=True)\nwhile True: pass"
    procs = [
        subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
        for _ in range(CORES)
    ]
    try:
        for proc in procs:  # each one spinning, not still starting
            assert proc.stdout is not None and proc.stdout.readline() == "spinning\n"
        yield len(procs)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def test_running_count_is_read_on_linux() -> None:
    others = contention.other_runnable()
    if sys.platform.startswith("linux"):
        assert isinstance(others, int) and others >= 0
    else:
        assert others is None


@pytest.mark.skipif(not sys.platform.startswith("linux") or CORES < 2, reason="Linux, 2+ cores")
def test_busy_cores_cap_openmp_at_one_thread_and_the_cap_is_lifted(busy_neighbours: int) -> None:
    # OpenMP at every core first: the suite's environment may start it at one thread
    # (tox.ini), where a cap of one would change nothing
    with threadpool_limits(CORES, user_api="openmp"):
        assert openmp_threads() == CORES
        assert contention.other_runnable() >= busy_neighbours  # type: ignore[operator]
        with contention.free_cores_only():
            assert openmp_threads() == 1
        assert openmp_threads() == CORES
