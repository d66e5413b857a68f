"""`scm doctor`: interpreters, worker packages, a live handshake and the daemon, each ok or not."""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from .. import _daemon, _pythons, provision
from .._isolated import python_argv
from .._locate import fix_hint, locate
from .._pythons import run_quietly
from ..errors import WorkerError
from ..worker import Worker
from .common import EXIT_ERROR, EXIT_OK, add_command

WORKER_PACKAGES = ("dowhy", "pandas", "numpy", "scikit-learn", "networkx", "jsonrpcserver")


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
    env_checks = [show(check) for check in located]
    if python is not None:
        checks += [show(check) for check in worker_packages(python)]
        env_checks.append(show(pin_check(python)))
    handshake = [show(check) for check in live_handshake(args)] + [show(daemon_check(args.python))]
    checks += env_checks + handshake
    if all(check.ok for check in env_checks + handshake):
        print("\nready: the client can start the worker and talk to it")
        return EXIT_OK
    print("\nnot ready: the client cannot drive the worker")
    for fix in dict.fromkeys(check.fix for check in checks if not check.ok and check.fix):
        print(f"  fix: {fix}")
    return EXIT_ERROR


def _format_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def python_version_of(python: str) -> str | None:
    """The full version if ``python`` actually runs (a pyenv shim may exist and fail)."""
    found = _pythons.probe(python, "")
    return found.version if found is not None else None


def find_interpreter(version: str) -> Check:
    """The interpreter `scm setup` would use for X.Y: PATH if it really runs, pyenv, uv."""
    search = _pythons.find_python(version, uv=provision.find_uv())
    if search.found is None:
        return Check(f"python{version}", False, "; ".join(search.notes),
                     f"install Python {version} (e.g. `pyenv install {version}`)")
    found = search.found
    notes = [f"{found.version} ({found.path}, {found.how})", *search.notes]
    return Check(f"python{version}", True, "; ".join(notes))


def locate_worker_python(explicit: str | None) -> tuple[str | None, list[Check]]:
    """The worker interpreter, how it was found, and the provisioned environment's key."""
    try:
        located = locate(explicit)
    except WorkerError as exc:
        return None, [Check("worker python", False, str(exc).splitlines()[0], fix_hint())]
    version = python_version_of(located.python)
    if version is None:
        return None, [Check("worker python", False,
                            f"{located.python} (from {located.how}) does not run", fix_hint())]
    note = "" if version.startswith("3.11.") else " — the worker is pinned to Python 3.11"
    checks = [Check("worker python", True,
                    f"{version} ({located.python}, from {located.how}){note}")]
    if located.manifest is not None:
        m = located.manifest
        checks.append(Check("worker env", True, f"key {m.key}, built with {m.installer} in "
                                                f"{m.build_seconds:.1f} s from {m.base_python}"))
    return located.python, checks


def pin_check(python: str) -> Check:
    """The worker's installed versions against the pins this client carries."""
    verdict = provision.check(python, full=False)
    return Check("pins", verdict.ok, verdict.text(),
                 "rebuild the worker environment: `scm setup --force`")


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
    done = run_quietly(python_argv(python, "-c", _PACKAGE_PROBE, *WORKER_PACKAGES))
    if done is None or done.returncode != 0:
        lines = done.stderr.strip().splitlines() if done else ["could not run"]
        reason = (lines or ["no output"])[-1]
        return [Check("worker packages", False,
                      f"{python} could not report its packages: {reason}", fix_hint())]
    found = json.loads(done.stdout)
    checks = [Check(name, found.get(name) is not None, found.get(name) or "not installed",
                    "install the worker's packages: `scm setup`") for name in WORKER_PACKAGES]
    checks.append(Check("scm_worker", found.get("scm_worker") is not None,
                        found.get("scm_worker") or "not importable",
                        "build a worker environment: `scm setup`"))
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
        return [Check("handshake", False, detail, fix_hint())]
    finally:
        worker.close()
    return [
        Check("handshake", True, handshake_text(info)),
        Check("fast paths", True, fast_paths_text(info.get("fast"))),
        Check("ping", True, f"{ping_ms:.1f} ms round trip"),
    ]


def daemon_check(python: str | None) -> Check:
    """The daemon of the worker environment, which every other `scm` command talks to: none
    running is fine (the next command starts one); one that cannot answer ``status`` is not."""
    if not _daemon.daemon_enabled():
        return Check("daemon", True, "off (SCM_DAEMON): commands start a private worker")
    try:
        path = _daemon.socket_path(python)
    except WorkerError as exc:
        return Check("daemon", False, f"no worker environment to name it: "
                                      f"{str(exc).splitlines()[0]}", fix_hint())
    try:
        found = _daemon.status(path)
    except (WorkerError, FutureTimeout) as exc:
        return Check("daemon", False, f"{path}: {str(exc).splitlines()[0]}",
                     "`scm daemon stop`, then `scm daemon start`")
    if found is None:
        return Check("daemon", True, f"not running; the next `scm` command starts one ({path})")
    stale = ", stale (its source changed since it started)" if found.get("stale") else ""
    return Check("daemon", True, (
        f"pid {found.get('pid')}, worker {found.get('worker_version')}{stale}, up "
        f"{found.get('uptime_s', 0):.0f} s, {found.get('requests_served')} requests served ({path})"
    ))


def handshake_text(info: dict[str, Any]) -> str:
    warm = "yes" if info.get("warm") else "no (loading DoWhy)"
    return (f"worker {info.get('worker_version')}, protocol {info.get('protocol_version')}, "
            f"Python {info.get('python_version')}, DoWhy {info.get('dowhy_version')}, "
            f"pid {info.get('pid')}, warm {warm}")


def fast_paths_text(fast: Any) -> str:
    """The worker's fast paths (``initialize``'s ``fast``): those active, and why any is off.
    An inactive path is no fault: the worker then runs DoWhy's and scikit-learn's own path."""
    if not isinstance(fast, dict) or not fast:
        return "not reported (an older worker)"
    active = sorted(name for name, state in fast.items() if state.get("active"))
    off = [f"{name} off ({state.get('reason')})"
           for name, state in sorted(fast.items()) if not state.get("active")]
    return "; ".join(([f"active: {', '.join(active)}"] if active else []) + off)
