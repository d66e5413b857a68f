"""Nothing from the working directory runs: `scm` and the library inside a planted directory.

The directory holds what a cloned repository could hold: a package ``scm_worker`` that
would shadow the worker's, a ``json.py`` that a probe's ``import json`` would take, a
``.venv-worker/bin/python`` (the old discovery took it from any directory) and a
``.venv/bin/python`` (``uv python find`` runs a directory's ``.venv`` to ask its version).
Each plant, when run, writes a marker file named after it outside the directory. From
there `scm fit` (private and with the daemon), `scm doctor`, `scm setup --check`,
``Worker()``, ``Worker.connect()`` and ``DoWhyClient`` must run none of them, and the real
worker must answer, from ``/``.

The worker is found as a user's would be, from nowhere near the directory: no
SCM_WORKER_PYTHON, and a provisioned environment in a private data directory — the
manifest `scm setup` writes, over a ``bin/python`` that execs the test's real worker
interpreter (building the real one takes minutes; the manifest is what discovery reads).
The commands run as the user runs them, through the ``scm`` script, whose ``sys.path``
starts with its own directory, not the caller's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import load_fixture
from scm_client import Worker, __version__, _envs, _pins, compat, provision
from scm_client.compat import DoWhyClient
from support.daemons import listening_pids

ROOT = Path(__file__).resolve().parents[2]
REQUEST = ROOT / "tests" / "fixtures" / "linear_chain.json"
SCM = Path(sys.executable).with_name("scm")
FAST_ARGS = ("--no-warmup", "--no-store")
PLANTS = ("scm_worker", "json.py", ".venv-worker", ".venv")


# -- the planted directory and the worker found from elsewhere ---------------------------------


def plant(directory: Path, markers: Path) -> None:
    """The four plants; each writes ``markers/<its name>`` when it runs, then fails."""
    def python_plant(name: str) -> str:
        return f"open({str(markers / name)!r}, 'w').close()\nraise SystemExit(3)\n"

    def shell_plant(name: str) -> str:
        return f"#!/bin/sh\n: > '{markers / name}'\nexit 3\n"  # no PATH needed

    (directory / "scm_worker").mkdir()
    (directory / "scm_worker" / "__init__.py").write_text(python_plant("scm_worker"))
    (directory / "scm_worker" / "__main__.py").write_text(python_plant("scm_worker"))
    (directory / "json.py").write_text(python_plant("json.py"))
    for venv in (".venv-worker", ".venv"):
        python = directory / venv / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(shell_plant(venv))
        python.chmod(0o755)
        (directory / venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.9\n")
    shutil.copyfile(REQUEST, directory / "request.json")


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def planted(tmp_path: Path, markers: Path) -> Iterator[Path]:
    """The planted directory; after the test, no plant may have run."""
    directory = tmp_path / "clone"
    directory.mkdir()
    plant(directory, markers)
    yield directory
    assert sorted(p.name for p in markers.iterdir()) == [], "code from the working directory ran"


@pytest.fixture(scope="module")
def data_dir(worker_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding one environment `scm setup --python WORKER` would have built:
    its manifest at the key that command computes, and a ``bin/python`` running the real worker."""
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_envs.DATA_DIR_VAR, str(data))
        target = provision.plan(worker_python)
        python = _envs.env_python(target.path)
        python.parent.mkdir(parents=True)
        python.write_text(f'#!/bin/sh\nexec "{worker_python}" "$@"\n')
        python.chmod(0o755)
        _envs.write_manifest(_envs.Manifest(
            key=target.key, path=str(target.path), worker_version=__version__,
            pins_sha256=_pins.pins_digest(), base_python=target.interpreter.path,
            python_version=target.interpreter.version, installer="uv", build_seconds=0.0,
            created=time.time()))
    return data


@pytest.fixture
def user_env(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A user's environment, in this process too: no SCM_WORKER_PYTHON, a private HOME, data,
    cache and runtime directory (the daemon's socket directory is ``daemon_dir``'s when used)."""
    monkeypatch.delenv("SCM_WORKER_PYTHON", raising=False)
    monkeypatch.delenv("SCM_AUTO_SETUP", raising=False)
    monkeypatch.setenv(_envs.DATA_DIR_VAR, str(data_dir))
    monkeypatch.delenv("UV_PYTHON_INSTALL_DIR", raising=False)
    for name in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        (tmp_path / name).mkdir(mode=0o700)
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8")
    return dict(os.environ)


def scm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert SCM.exists(), f"no scm script beside {sys.executable}"
    return subprocess.run([str(SCM), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=600, check=False)


def cwd_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


# -- the scm command ----------------------------------------------------------------------------


@pytest.mark.parametrize("found_by", ["provisioned", "SCM_WORKER_PYTHON"])
def test_scm_fit_without_the_daemon_runs_nothing_from_the_directory(
    planted: Path, user_env: dict[str, str], worker_python: str, found_by: str,
) -> None:
    """Found by discovery or named by SCM_WORKER_PYTHON (the issue's probe): either way
    neither the directory's ``.venv-worker`` nor its ``scm_worker`` runs."""
    env = {**user_env, **({found_by: worker_python} if found_by != "provisioned" else {})}
    done = scm("fit", "request.json", "--no-daemon", cwd=planted, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "linear" in done.stdout, done.stdout


def test_scm_fit_with_the_daemon_runs_nothing_from_the_directory(
    daemon_dir: Path, planted: Path, user_env: dict[str, str],
) -> None:
    done = scm("fit", "request.json", cwd=planted, env=user_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "linear" in done.stdout, done.stdout
    daemons = listening_pids(daemon_dir)
    assert len(daemons) == 1, f"the fit started {len(daemons)} daemons in {daemon_dir}"
    assert cwd_of(daemons[0]) == "/"


def test_scm_doctor_runs_nothing_from_the_directory(
    planted: Path, user_env: dict[str, str],
) -> None:
    done = scm("doctor", cwd=planted, env=user_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"ok\s+worker python\s+3\.11\.", done.stdout), done.stdout
    assert re.search(r"ok\s+ping\s+[\d.]+ ms", done.stdout), done.stdout


def test_scm_setup_check_runs_nothing_from_the_directory(
    planted: Path, user_env: dict[str, str], worker_python: str,
) -> None:
    done = scm("setup", "--check", "--python", worker_python, cwd=planted, env=user_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: " in done.stdout and "DoWhy imports" in done.stdout, done.stdout


def test_scm_setup_asks_uv_about_no_environment_of_the_directory(
    planted: Path, user_env: dict[str, str], tmp_path: Path,
) -> None:
    """With only uv to ask (no python3.11 on PATH, no pyenv), `uv python find` runs from
    ``/``: run from the directory, it would have run the directory's ``.venv/bin/python``."""
    uv = Path(sys.executable).with_name("uv")
    assert uv.exists(), f"no uv beside {sys.executable} (a dependency of the e2e env)"
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "uv").symlink_to(uv)
    env = {**user_env, "PATH": str(tools)}
    done = scm("setup", "--check", cwd=planted, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    # uv knows no Python 3.11 here (its own installs live under the private HOME), or one
    # for which nothing was built: either way this builds nothing
    assert "no Python 3.11 found" in done.stderr or "not built" in done.stdout, done.stderr


def test_a_relative_store_is_the_callers_directory_not_the_workers(
    user_env: dict[str, str], tmp_path: Path,
) -> None:
    """The worker runs from ``/``: a relative ``--store`` is made absolute by the client."""
    here = tmp_path / "here"
    here.mkdir()
    done = scm("models", "--store", "models", "list", cwd=here, env=user_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"store: {here / 'models'}" in done.stdout, done.stdout
    assert (here / "models").is_dir()


# -- the library --------------------------------------------------------------------------------


def test_worker_runs_nothing_from_the_directory(
    planted: Path, user_env: dict[str, str], worker_python: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An explicit interpreter (discovery is the CLI's and DoWhyClient's cases here)."""
    monkeypatch.chdir(planted)
    with Worker(worker_python, worker_args=FAST_ARGS) as worker:
        assert worker.ping() == "pong"
        assert worker.info["worker_version"] == __version__ and worker.info["dowhy_version"]
        assert worker.pid is not None and cwd_of(worker.pid) == "/"


def test_worker_connect_runs_nothing_from_the_directory(
    daemon_dir: Path, planted: Path, user_env: dict[str, str], worker_python: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon started by the library: what it imports becomes every later client's."""
    monkeypatch.chdir(planted)
    with Worker.connect(worker_python, worker_args=FAST_ARGS, idle_timeout=300) as worker:
        assert worker.ping() == "pong"
        assert worker.info["daemon"] is True and worker.info["dowhy_version"]
        assert worker.pid is not None and cwd_of(worker.pid) == "/"


def test_dowhy_client_runs_nothing_from_the_directory(
    planted: Path, user_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(planted)
    compat.close_shared_workers()
    try:
        result = DoWhyClient(timeout=300.0).fit_scm(*load_fixture("linear_chain"),
                                                    validate_r2=False)
        assert result["status"] == "success", json.dumps(result)[:500]
    finally:
        compat.close_shared_workers()
