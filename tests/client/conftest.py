"""Client tests without DoWhy: the real client driving tests/client/fake_worker.py.

``Worker`` always runs ``[python, "-I", "-m", "scm_worker", *worker_args]``, isolated:
PYTHONPATH is ignored and the working directory is ``/``. So the fake gets an
environment of its own, as the real worker has: a virtualenv of this interpreter (no
pip: 0.2 s) whose site-packages point, by a ``.pth`` file, at a directory holding a
package named ``scm_worker`` whose ``__main__`` is the fake.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import scm_client
from scm_client import Worker
from support.daemons import daemon_dir, no_daemon_by_default, socket_dir  # noqa: F401 - fixtures

FAKE = Path(__file__).resolve().with_name("fake_worker.py")


@pytest.fixture(scope="session")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python of an environment whose ``scm_worker`` is the fake."""
    root = tmp_path_factory.mktemp("fake-worker-path")
    package = root / "scm_worker"
    package.mkdir()
    (package / "__init__.py").write_text('"""The fake worker, shadowing the real one."""\n')
    shutil.copyfile(FAKE, package / "__main__.py")
    venv = tmp_path_factory.mktemp("fake-worker-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    Path(purelib, "fake_worker.pth").write_text(f"{root}\n")
    return str(venv / "bin" / "python")


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    """Every fake started by the test appends its pid here (FAKE_PID_FILE)."""
    return tmp_path / "fake-pids"


@pytest.fixture
def make_fake(fake_python: str, pid_file: Path) -> Iterator[Callable[..., Worker]]:
    """``make_fake(FAKE_X="1", ..., **worker_kwargs)``: a Worker running the fake.

    Upper-case keyword arguments become the fake's environment; the rest go to Worker.
    Every Worker is closed after the test.
    """
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        fake_env = {k: str(v) for k, v in kwargs.items() if k.isupper()}
        options = {k: v for k, v in kwargs.items() if not k.isupper()}
        env = {"FAKE_PID_FILE": str(pid_file), "FAKE_WORKER_VERSION": scm_client.__version__,
               **fake_env}
        options.setdefault("start_timeout", 10.0)
        options.setdefault("shutdown_timeout", 2.0)
        worker = Worker(python=fake_python, env=env, **options)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()
