"""Every code block of README.md, CONTRIBUTING.md and docs/*.md runs, so the docs cannot drift.

Loaded by tox's docs env (`pytest docs CONTRIBUTING.md README.md ... -p documents.plugin`):
sybil collects each document's blocks as tests. ```python blocks run in one namespace per
document with the real client; ```console blocks run each `$ scm ...` line as a real
process with the `scm` of this environment. Both reach the real worker that
SCM_WORKER_PYTHON names, and all of them share one daemon, in a private daemon directory
stopped when the run ends. A block that cannot run in a test (an install from PyPI,
`make test` itself) is skipped where it stands, with its reason:
`<!-- skip: next "why" -->` (tests/documents/test_documents.py requires the reason).
"""

from __future__ import annotations

import doctest
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
#: The documents whose blocks run (paths relative to the checkout).
DOCUMENTS = ("README.md", "CONTRIBUTING.md", "docs/*.md")
COMMAND_TIMEOUT = 600.0  # liveness only: a fit on a loaded 2-core machine
#: The languages of blocks that run; test_documents.py admits the others only as data.
RUN_LANGUAGES = ("python", "console")
_STATE = "__documents_state__"
_OUTPUT = doctest.OutputChecker()
_OUTPUT_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def console_steps(source: str) -> Iterator[tuple[str, str]]:
    """Each `$ command` of a console block with the output written under it (maybe none)."""
    command: str | None = None
    output: list[str] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, "\n".join(output)
            command, output = line[2:], []
        elif command is not None:
            output.append(line)
    if command is not None:
        yield command, "\n".join(output)


def command_env() -> dict[str, str]:
    """The environment a user's shell would give `scm`: without the tests' PYTHONPATH."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def run_console(example: Example) -> str | None:
    """Run a console block's commands in turn; a failure message names the first that fails."""
    state = example.namespace[_STATE]
    for command, expected in console_steps(example.parsed):
        argv = shlex.split(command, comments=True)
        if not argv:
            continue
        if argv[0] != "scm":
            return f"{command!r}: only `scm` commands run here; skip this block with its reason"
        done = subprocess.run([state["scm"], *argv[1:]], check=False, cwd=state["cwd"],
                              env=command_env(), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            return f"{command!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        shown = expected + "\n"
        if expected.strip() and not _OUTPUT.check_output(shown, done.stdout, _OUTPUT_FLAGS):
            return f"{command!r} printed:\n{done.stdout}\nthe document shows:\n{expected}"
    return None


#: The daemon directory of this session, shared by every document (made on first use).
_SESSION: dict[str, Any] = {}


def session_daemon_dir() -> Path:
    """One private daemon directory for the whole run: a daemon started by one document's
    blocks serves the next document's too, so the run pays DoWhy's start-up once, not per
    document (README.md, collected last, ends by stopping it)."""
    if not _SESSION:
        run = Path(tempfile.mkdtemp(prefix="scm-docs-run-"))
        _SESSION.update(run=run, saved={name: os.environ.get(name)
                                        for name in ("SCM_DAEMON_DIR", "SCM_DAEMON")})
        os.environ["SCM_DAEMON_DIR"] = str(run)
        os.environ.pop("SCM_DAEMON", None)
    return Path(_SESSION["run"])


def setup_document(namespace: dict[str, Any]) -> None:
    """A scratch directory with the checkout's fixtures and the documents' `request.json`
    (the linear chain); the session's daemon directory."""
    scm = shutil.which("scm")
    if scm is None or not os.environ.get("SCM_WORKER_PYTHON"):
        raise RuntimeError("the docs tests need `scm` on PATH and SCM_WORKER_PYTHON (tox -e docs)")
    session_daemon_dir()
    scratch = Path(tempfile.mkdtemp(prefix="scm-docs-"))
    shutil.copytree(ROOT / "tests" / "fixtures", scratch / "tests" / "fixtures")
    # the documents' example request file, "as tests/fixtures/linear_chain.json"
    shutil.copy(ROOT / "tests" / "fixtures" / "linear_chain.json", scratch / "request.json")
    namespace[_STATE] = {"scm": scm, "cwd": scratch}


def teardown_document(namespace: dict[str, Any]) -> None:
    """Close the document's shared connections and remove its scratch directory."""
    from scm_client.compat import close_shared_workers

    close_shared_workers()
    shutil.rmtree(namespace.pop(_STATE)["cwd"], ignore_errors=True)


def pytest_sessionfinish() -> None:
    """Stop the session's daemon (if a document left one running), restore the environment."""
    if not _SESSION:
        return
    scm = shutil.which("scm") or "scm"
    # best effort: a run whose README stopped the daemon finds none to stop
    subprocess.run([scm, "daemon", "stop"], check=False, cwd="/", env=command_env(),
                   capture_output=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    for name, value in _SESSION.pop("saved").items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_SESSION.pop("run"), ignore_errors=True)


SYBIL = Sybil(
    parsers=[PythonCodeBlockParser(), CodeBlockParser("console", run_console), SkipParser()],
    patterns=list(DOCUMENTS),
    path=str(ROOT),
    setup=setup_document,
    teardown=teardown_document,
)

pytest_collect_file = SYBIL.pytest()
