"""`scm doctor`: the interpreters, the worker's packages and a live handshake, each ok or not."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._locate import ENV_VAR, VENV, find_worker_python
from ..errors import WorkerError
from ..worker import Worker
from .common import EXIT_ERROR, EXIT_OK, add_command

WORKER_PACKAGES = ("dowhy", "pandas", "numpy", "scikit-learn", "networkx", "jsonrpcserver")
INSTALL_HINT = ("run `make venvs`, or set SCM_WORKER_PYTHON to a Python 3.11 with "
                "worker-requirements.txt installed")


def register(subparsers: Any) -> None:
    add_command(subparsers, "doctor", run,
                "check the interpreters, the worker's packages and a live handshake")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def show(check: Check) -> Check:
    print(f"  {'ok' if check.ok else 'missing':8} {check.name:18} {check.detail}", flush=True)
    return check


def run(args: argparse.Namespace) -> int:
    print("scm doctor")
    checks = [show(Check("client python", True, f"{_format_version()} ({sys.executable})"))]
    checks += [show(find_interpreter(version)) for version in ("3.11", "3.13")]
    python, located = locate_worker_python(args.python)
    checks.append(show(located))
    if python is not None:
        checks += [show(check) for check in worker_packages(python)]
    handshake = [show(check) for check in live_handshake(args)]
    checks += handshake
    if all(check.ok for check in handshake):
        print("\nready: the client can start the worker and talk to it")
        return EXIT_OK
    print("\nnot ready: the client cannot drive the worker")
    for fix in dict.fromkeys(check.fix for check in checks if not check.ok and check.fix):
        print(f"  fix: {fix}")
    return EXIT_ERROR


def _format_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def run_quietly(argv: Sequence[str],
                timeout: float = 60.0) -> subprocess.CompletedProcess[str] | None:
    """Run a probe; None if it cannot be run at all."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def python_version_of(python: str) -> str | None:
    """The full version if ``python`` actually runs (a pyenv shim may exist and fail)."""
    done = run_quietly([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    return done.stdout.strip() if done is not None and done.returncode == 0 else None


def find_interpreter(version: str) -> Check:
    """pythonX.Y on PATH if it really runs as X.Y, else $(pyenv prefix X.Y)/bin/pythonX.Y."""
    name = f"python{version}"
    notes = []
    on_path = shutil.which(name)
    if on_path:
        got = python_version_of(on_path)
        if got and got.startswith(version + "."):
            return Check(name, True, f"{got} ({on_path}, on PATH)")
        shim = " (a pyenv shim?)" if "shims" in on_path else ""
        notes.append(f"{on_path} is on PATH but does not run" + shim)
    prefix = pyenv_prefix(version)
    if prefix:
        candidate = str(Path(prefix) / "bin" / name)
        got = python_version_of(candidate)
        if got and got.startswith(version + "."):
            return Check(name, True, "; ".join([f"{got} ({candidate}, via pyenv prefix)", *notes]))
        notes.append(f"pyenv prefix {version} gave {prefix}, but {candidate} does not run")
    notes = notes or ["not on PATH, and pyenv does not know it"]
    return Check(name, False, "; ".join(notes),
                 f"install Python {version} (e.g. `pyenv install {version}`)")


def pyenv_prefix(version: str) -> str | None:
    if shutil.which("pyenv") is None:
        return None
    done = run_quietly(["pyenv", "prefix", version])
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return done.stdout.strip().splitlines()[0].split(":")[0]


def locate_worker_python(explicit: str | None) -> tuple[str | None, Check]:
    source = "--python" if explicit else f"${ENV_VAR}" if os.environ.get(ENV_VAR) else f"{VENV}/"
    try:
        python = find_worker_python(explicit)
    except WorkerError as exc:
        return None, Check("worker python", False, str(exc).splitlines()[0], INSTALL_HINT)
    version = python_version_of(python)
    if version is None:
        return None, Check("worker python", False, f"{python} (from {source}) does not run",
                           INSTALL_HINT)
    note = "" if version.startswith("3.11.") else " — the worker is pinned to Python 3.11"
    return python, Check("worker python", True, f"{version} ({python}, from {source}){note}")


_PACKAGE_PROBE = """\
import importlib.metadata as metadata, importlib.util, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
found["scm_worker"] = "importable" if importlib.util.find_spec("scm_worker") else None
print(json.dumps(found))
"""


def worker_packages(python: str) -> list[Check]:
    """The worker interpreter's versions of the DoWhy stack, read from package metadata."""
    done = run_quietly([python, "-c", _PACKAGE_PROBE, *WORKER_PACKAGES])
    if done is None or done.returncode != 0:
        lines = done.stderr.strip().splitlines() if done else ["could not run"]
        reason = (lines or ["no output"])[-1]
        return [Check("worker packages", False,
                      f"{python} could not report its packages: {reason}", INSTALL_HINT)]
    found = json.loads(done.stdout)
    requirements = f"`{python} -m pip install -r worker-requirements.txt`"
    checks = [Check(name, found.get(name) is not None, found.get(name) or "not installed",
                    f"install the worker's packages: {requirements}") for name in WORKER_PACKAGES]
    checks.append(Check("scm_worker", found.get("scm_worker") is not None,
                        found.get("scm_worker") or "not importable",
                        f"install this project into it: `{python} -m pip install --no-deps -e .`"))
    return checks


def live_handshake(args: argparse.Namespace) -> list[Check]:
    """Start a Worker, show its initialize answer, time a ping, close it."""
    worker = Worker(args.python, start_timeout=args.timeout or 120.0,
                    request_timeout=args.timeout or 30.0)
    try:
        info = worker.start()
        started = time.perf_counter()
        worker.ping()
        ping_ms = (time.perf_counter() - started) * 1000
    except WorkerError as exc:
        lines = str(exc).splitlines()
        detail = lines[0] + "".join(f"\n{' ' * 30}{line}" for line in lines[1:][-8:])
        return [Check("handshake", False, detail, INSTALL_HINT)]
    finally:
        worker.close()
    return [
        Check("handshake", True, handshake_text(info)),
        Check("ping", True, f"{ping_ms:.1f} ms round trip"),
    ]


def handshake_text(info: dict[str, Any]) -> str:
    warm = "yes" if info.get("warm") else "no (loading DoWhy)"
    return (f"worker {info.get('worker_version')}, protocol {info.get('protocol_version')}, "
            f"Python {info.get('python_version')}, DoWhy {info.get('dowhy_version')}, "
            f"pid {info.get('pid')}, warm {warm}")
