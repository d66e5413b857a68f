"""Provisioning and discovery without building anything: pins, keys, completion marks, skew.

The environments here are real directories with a real interpreter (this one, linked as
``bin/python``); what is checked is which of them discovery would pick. Building one for
real is tests/e2e/test_install.py's job.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
import scm_client
from scm_client import WorkerNotFound, WorkerVersionMismatch, _envs, _locate, _pins, provision
from scm_client._pythons import find_python

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data directory, nothing else to find: no SCM_WORKER_PYTHON, an empty cwd."""
    monkeypatch.setenv("SCM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SCM_WORKER_PYTHON", raising=False)
    monkeypatch.delenv("SCM_AUTO_SETUP", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_locate, "project_root", lambda: tmp_path / "not-a-checkout")
    return tmp_path / "data"


def make_env(key: str, *, version: str = scm_client.__version__, finished: bool = True,
             created: float | None = None) -> Path:
    """An environment directory as a build leaves it: bin/python, and the manifest if finished."""
    path = _envs.envs_dir() / key
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    if finished:
        _envs.write_manifest(_envs.Manifest(
            key=key, path=str(path), worker_version=version, pins_sha256=_pins.pins_digest(),
            base_python=sys.executable, python_version="3.11.7", installer="uv", build_seconds=1.0,
            created=time.time() if created is None else created))
    return path


def test_the_pins_file_is_the_one_make_and_tox_read() -> None:
    assert _pins.pins_path() == ROOT / "client" / "scm_client" / "worker-requirements.txt"
    assert "-r client/scm_client/worker-requirements.txt" in (ROOT / "worker-requirements.txt").read_text()
    assert "-r client/scm_client/worker-requirements.txt" in (ROOT / "tox.ini").read_text()
    assert "client/scm_client/worker-requirements.txt" in (ROOT / "Makefile").read_text()
    pins = _pins.pins()
    assert pins["dowhy"] and pins["jsonrpcserver"] and pins["pyyaml"]
    assert len(pins) == len([line for line in _pins.pins_text().splitlines() if "==" in line])


def test_parse_pins_skips_comments_includes_and_blanks() -> None:
    text = "# comment\n\n-r other.txt\nnumpy==2.4.6\nqdldl==0.1.9.post1  # trailing\n"
    assert _pins.parse_pins(text) == {"numpy": "2.4.6", "qdldl": "0.1.9.post1"}


def test_parse_lock_joins_continued_lines_and_reads_every_hash() -> None:
    text = ("--only-binary :all:\n"
            "numpy==2.4.6 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
            "    # via pandas\n"
            "qdldl==0.1.9.post1\n")
    assert _pins.parse_lock(text) == {
        "numpy": _pins.Locked("2.4.6", ("sha256:" + "a" * 64, "sha256:" + "b" * 64)),
        "qdldl": _pins.Locked("0.1.9.post1", ()),
    }


def _manifest(**changes: str) -> _envs.Manifest:
    fields = dict(key="k", path="/nowhere", worker_version=scm_client.__version__,
                  pins_sha256=_pins.pins_digest(), base_python=sys.executable, python_version="3.11.7",
                  installer="uv", build_seconds=1.0, created=1.0, content_sha256="f" * 64)
    return _envs.Manifest(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_built_environment_is_reused_only_with_its_lock_and_its_files_as_built() -> None:
    as_built = provision.Verdict(True, [], 73, False, "f" * 64)
    assert provision.reusable(_manifest(), as_built).ok
    other_lock = provision.reusable(_manifest(pins_sha256="0" * 64), as_built)
    assert not other_lock.ok and other_lock.problems == ["it was built from another lock"]
    changed = provision.reusable(_manifest(), provision.Verdict(True, [], 73, False, "e" * 64))
    assert not changed.ok and changed.problems == ["its installed files changed since it was built"]
    assert "its installed files changed since it was built" in changed.text()


def test_client_and_worker_versions_are_one() -> None:
    worker_init = (ROOT / "worker" / "scm_worker" / "__init__.py").read_text()
    assert f'__version__ = "{scm_client.__version__}"' in worker_init


def test_key_changes_with_pins_version_and_interpreter() -> None:
    base = _envs.env_key("a" * 64, "0.1.0", "/py 3.11.7")
    assert base == _envs.env_key("a" * 64, "0.1.0", "/py 3.11.7")
    others = {_envs.env_key("b" * 64, "0.1.0", "/py 3.11.7"), _envs.env_key("a" * 64, "0.2.0", "/py 3.11.7"),
              _envs.env_key("a" * 64, "0.1.0", "/py 3.11.8")}
    assert base not in others and len(others) == 3
    assert re.fullmatch(r"[0-9a-f]{16}", base)


def test_data_dir_follows_scm_data_dir_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SCM_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert _envs.envs_dir() == tmp_path / "xdg" / "scm-worker" / "envs"
    monkeypatch.setenv("SCM_DATA_DIR", str(tmp_path / "mine"))
    assert _envs.envs_dir() == tmp_path / "mine" / "envs"


def test_nothing_found_names_scm_setup_and_not_make_outside_a_checkout(data_dir: Path) -> None:
    with pytest.raises(WorkerNotFound) as caught:
        _locate.locate()
    message = str(caught.value)
    assert "`scm setup`" in message and "make venvs" not in message and str(data_dir / "envs") in message


def test_inside_a_checkout_the_message_also_names_make_venvs(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_locate, "project_root", lambda: ROOT)
    monkeypatch.setattr(_locate, "candidate_venvs", lambda: [ROOT / "no-such-venv"])
    with pytest.raises(WorkerNotFound, match=r"`scm setup` \(or `make venvs` in this checkout\)"):
        _locate.locate()


def test_an_unfinished_build_is_never_picked(data_dir: Path) -> None:
    make_env("interrupted", finished=False)
    with pytest.raises(WorkerNotFound):
        _locate.locate()


def test_a_finished_environment_is_found_with_how_and_manifest(data_dir: Path) -> None:
    path = make_env("ready")
    located = _locate.locate()
    assert located.python == str(path / "bin" / "python")
    assert located.how == "provisioned by scm setup" and located.manifest is not None
    assert located.manifest.key == "ready"


def test_the_newest_of_several_finished_environments_wins(data_dir: Path) -> None:
    make_env("older", created=1000.0)
    newer = make_env("newer", created=2000.0)
    assert _locate.locate().python == str(newer / "bin" / "python")


def test_an_environment_of_another_version_is_refused_naming_scm_setup(data_dir: Path) -> None:
    old = make_env("old", version="0.0.1")
    with pytest.raises(WorkerNotFound) as caught:
        _locate.locate()
    message = str(caught.value)
    assert "`scm setup`" in message and f"{old} is for scm-worker 0.0.1" in message


def test_explicit_and_env_var_come_before_provisioned(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_env("ready")
    assert _locate.locate(sys.executable).how == "--python"
    monkeypatch.setenv("SCM_WORKER_PYTHON", sys.executable)
    assert _locate.locate().how == "$SCM_WORKER_PYTHON"


def test_remove_deletes_finished_and_unfinished_environments(data_dir: Path) -> None:
    paths = {make_env("a"), make_env("b", finished=False)}
    assert set(provision.remove_all()) == paths
    assert _envs.env_dirs() == [] and not list(_envs.envs_dir().glob("*.lock"))


def test_manifest_is_written_atomically_as_the_completion_mark(data_dir: Path) -> None:
    path = make_env("ready")
    data = json.loads((path / _envs.MANIFEST).read_text())
    assert data["worker_version"] == scm_client.__version__ and data["key"] == "ready"
    assert not list(path.glob("*.partial"))


def test_auto_setup_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCM_AUTO_SETUP", raising=False)
    assert provision.auto_setup_enabled() is False
    monkeypatch.setenv("SCM_AUTO_SETUP", "1")
    assert provision.auto_setup_enabled() is True
    assert provision.auto_setup_enabled(False) is False


def test_find_python_takes_an_explicit_interpreter_and_refuses_a_wrong_version() -> None:
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = find_python(mine, sys.executable).found
    assert found is not None and found.how == "--python" and found.version.startswith(mine + ".")
    wrong = find_python("3.99", sys.executable)
    assert wrong.found is None and "does not run as Python 3.99" in wrong.notes[0]


def test_a_worker_of_another_version_is_refused_at_the_handshake(make_fake, pid_file: Path) -> None:  # type: ignore[no-untyped-def]
    worker = make_fake(FAKE_WORKER_VERSION="0.0.1")
    with pytest.raises(WorkerVersionMismatch) as caught:
        worker.start()
    message = str(caught.value)
    assert "scm-worker 0.0.1" in message and scm_client.__version__ in message and "`scm setup`" in message


def test_a_venv_worker_in_the_current_directory_is_never_picked(data_dir: Path, tmp_path: Path) -> None:
    """Only the client's own checkout has a .venv-worker/ worth taking; the directory the
    user stands in (the fixture's cwd) is whatever its author made it."""
    python = tmp_path / ".venv-worker" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert _locate.candidate_venvs() == []
    with pytest.raises(WorkerNotFound):
        _locate.locate()


def test_a_relative_interpreter_is_made_absolute_where_the_caller_stands(
    data_dir: Path, tmp_path: Path,
) -> None:
    """The worker is started from /: a relative --python or SCM_WORKER_PYTHON means the caller's."""
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert _locate.locate("env/bin/python").python == str(python)  # the symlink kept, not resolved
