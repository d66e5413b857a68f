"""The worker's identity: what names a daemon, and what ``status`` reports (identity.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import scm_worker
from scm_worker import identity

PACKAGE = Path(scm_worker.__file__).parent


def copy_of_package(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PACKAGE, tmp_path / "scm_worker",
                                ignore=shutil.ignore_patterns("__pycache__")))


def test_the_digest_follows_every_source_file_and_ignores_bytecode(tmp_path: Path) -> None:
    copy = copy_of_package(tmp_path)
    before = identity.source_digest(copy)
    assert identity.source_digest(copy) == before == identity.source_digest(PACKAGE)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "methods.cpython-311.pyc").write_bytes(b"whatever")
    assert identity.source_digest(copy) == before
    (copy / "api" / "report" / "html.py").write_text((copy / "api" / "report" / "html.py").read_text() + "#\n")
    edited = identity.source_digest(copy)
    assert edited != before
    (copy / "api" / "report" / "html.py").rename(copy / "api" / "report" / "html2.py")  # same bytes, other name
    assert identity.source_digest(copy) not in (before, edited)


def test_the_key_changes_with_the_environment_the_version_and_the_source() -> None:
    key = identity.environment_key("/env/a", "0.1.0", "d" * 64)
    assert len(key) == identity.KEY_LENGTH and int(key, 16) >= 0
    assert key != identity.environment_key("/env/b", "0.1.0", "d" * 64)
    assert key != identity.environment_key("/env/a", "0.1.1", "d" * 64)
    assert key != identity.environment_key("/env/a", "0.1.0", "e" * 64)


def test_the_probe_run_isolated_names_this_environment_not_the_working_directory(
    tmp_path: Path,
) -> None:
    """What the client runs, here from a directory that plants its own ``scm_worker``."""
    planted = tmp_path / "scm_worker"
    planted.mkdir()
    (planted / "__init__.py").write_text("__version__ = 'planted'\n")
    (planted / "identity.py").write_text("print('{\"planted\": true}')\n")
    done = subprocess.run([sys.executable, "-I", "-m", "scm_worker.identity"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True)
    told = json.loads(done.stdout)
    assert told == {**identity.describe(), "python": sys.executable}
    assert told["worker_path"] == str(PACKAGE) and told["prefix"] == sys.prefix
    assert told["worker_version"] == scm_worker.__version__
