"""Provisioning: build, reuse, check and remove the worker's Python 3.11 environments.

``scm setup`` and opted-in auto-setup both come here. A build runs in its environment's
final directory under a per-key lock and ends by writing the manifest (``_envs``): until
then discovery ignores the directory, so a build killed half-way is never used, and the
next build starts it afresh. uv builds the pinned stack in seconds; without uv, the
interpreter's own venv and pip do the same, slowly.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from . import _envs, _pins
from ._isolated import CWD, python_argv
from ._pythons import Interpreter, find_python, run_quietly
from ._version import __version__
from .errors import SetupFailed

WORKER_PYTHON: Final = "3.11"
AUTO_SETUP_VAR: Final = "SCM_AUTO_SETUP"
INSTALLER_VAR: Final = "SCM_INSTALLER"  # "uv" or "pip": force one (default: uv when found)
STEPS: Final = 5

Progress = Callable[[str], None]


def stderr_progress(line: str) -> None:
    """Progress goes to stderr: stdout may belong to the caller's own output."""
    print(f"scm setup: {line}", file=sys.stderr, flush=True)


def auto_setup_enabled(flag: bool | None = None) -> bool:
    """An explicit flag wins; otherwise $SCM_AUTO_SETUP=1 opts in. The default is never."""
    if flag is not None:
        return flag
    return os.environ.get(AUTO_SETUP_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


# -- what to build ------------------------------------------------------------------------


def find_uv() -> str | None:
    """uv on PATH, beside this interpreter (pip-installed into the same venv), or its module."""
    choice = os.environ.get(INSTALLER_VAR, "").strip().lower()
    if choice == "pip":
        return None
    for candidate in (shutil.which("uv"), str(Path(sys.executable).with_name("uv"))):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = _uv_module_bin() if importlib.util.find_spec("uv") is not None else None
    if found:
        return found
    if choice == "uv":
        raise SetupFailed(f"{INSTALLER_VAR}=uv, but uv is not installed (pip install uv)")
    return None


def _uv_module_bin() -> str | None:
    done = run_quietly(python_argv(sys.executable, "-c", "import uv; print(uv.find_uv_bin())"))
    return done.stdout.strip() if done is not None and done.returncode == 0 else None


@dataclass(frozen=True)
class Target:
    """The environment this client needs on this machine: interpreter, key, directory, installer."""

    interpreter: Interpreter
    key: str
    path: Path
    uv: str | None

    @property
    def installer(self) -> str:
        return "uv" if self.uv else "pip"


def plan(python: str | None = None) -> Target:
    uv = find_uv()
    search = find_python(WORKER_PYTHON, python, uv)
    if search.found is None:
        raise SetupFailed(
            f"no Python {WORKER_PYTHON} found: {'; '.join(search.notes)}. Install one "
            f"(`pyenv install {WORKER_PYTHON}` or `uv python install {WORKER_PYTHON}`) "
            "or pass --python PATH"
        )
    found = search.found
    key = _envs.env_key(_pins.pins_digest(), __version__, f"{found.path} {found.version}")
    return Target(found, key, _envs.envs_dir() / key, uv)


# -- checking -----------------------------------------------------------------------------

_CHECK: Final = """\
import base64, hashlib, importlib.metadata as md, json, os, sys
pins, want, full = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
problems, fingerprint, verified = [], hashlib.sha256(), 0

def stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size} {st.st_mtime_ns}"

def verify(dist):
    # (files hashed, files whose content is not the one RECORD names)
    hashed = [f for f in dist.files or () if f.hash is not None]
    changed = []
    for f in hashed:
        try:
            digest = hashlib.new(f.hash.mode, f.locate().read_bytes()).digest()
        except OSError:
            digest = b""
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != f.hash.value:
            changed.append(str(f))
    return len(hashed), changed

for name, pinned in sorted(pins.items()):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        problems.append(f"{name} missing (pinned {pinned})")
        continue
    if dist.version != pinned:
        problems.append(f"{name} {dist.version} (pinned {pinned})")
    record = dist.read_text("RECORD")
    if record is None:
        problems.append(f"{name} has no RECORD to check its files against")
        continue
    fingerprint.update(f"{name}\\0{record}\\0".encode())
    for f in dist.files or ():
        fingerprint.update(f"{f} {stamp(f.locate())}\\0".encode())
    if full:
        hashed, changed = verify(dist)
        verified += hashed - len(changed)
        if changed:
            n, e = len(changed), changed[0]
            problems.append(f"{name}: {n} file(s) differ from its RECORD, e.g. {e}")
try:
    import scm_worker
    if scm_worker.__version__ != want:
        problems.append(f"scm-worker {scm_worker.__version__} (this client is {want})")
except ImportError as exc:
    problems.append(f"scm_worker does not import: {exc}")
if full:
    try:
        import dowhy.gcm
    except Exception as exc:
        problems.append(f"DoWhy does not import: {type(exc).__name__}: {exc}")
found = {"problems": problems, "fingerprint": fingerprint.hexdigest(), "verified": verified}
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Verdict:
    """What the check found about an environment.

    ``fingerprint`` digests every pinned distribution's RECORD and the size and mtime of
    each file it lists: cheap to take, and a package reinstalled or edited changes it.
    ``verified`` counts the files whose content matched their RECORD's hash (``full``).
    """

    ok: bool
    problems: list[str]
    pins: int
    imported: bool  # the check imported DoWhy and hashed every file, not only read versions
    fingerprint: str = ""
    verified: int = 0

    def text(self) -> str:
        if not self.ok:
            shown = "; ".join(self.problems[:6]) + (
                f"; … {len(self.problems) - 6} more" if len(self.problems) > 6 else ""
            )
            return f"not ready: {shown}"
        return f"ok: {self.pins} pins match, scm-worker {__version__}" + (
            f", DoWhy imports, {self.verified} files match their RECORD" if self.imported else ""
        )


def check(python: Path | str, full: bool = True) -> Verdict:
    """Compare an environment with the lock and this client's version.

    Every check reads the versions and takes the environment's fingerprint; ``full``
    also hashes every installed file against its distribution's RECORD (seconds: the
    stack is ~900 MB) and imports DoWhy. Runs isolated (``_isolated``: no PYTHONPATH,
    nothing from the caller's directory), so it judges the environment itself.
    """
    pins = _pins.pins()
    argv = python_argv(str(python), "-c", _CHECK, json.dumps(pins), __version__,
                       "1" if full else "0")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=CWD, timeout=300,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Verdict(False, [f"{python} could not be run: {exc}"], len(pins), False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Verdict(False, [f"{python} failed the check: {tail}"], len(pins), False)
    found = json.loads(done.stdout)
    problems = [str(p) for p in found["problems"]]
    return Verdict(
        not problems, problems, len(pins), full, str(found["fingerprint"]), int(found["verified"])
    )


def reusable(manifest: _envs.Manifest, verdict: Verdict) -> Verdict:
    """The verdict on a built environment: also its lock and its files as the build left them.

    A changed lock is a new key, so a new directory; the digest is compared all the same,
    the rule stated where it is used. The fingerprint catches a package reinstalled or a
    file edited since the build (a ``full`` check names the files).
    """
    problems = list(verdict.problems)
    if manifest.pins_sha256 != _pins.pins_digest():
        problems.append("it was built from another lock")
    if verdict.fingerprint != manifest.content_sha256:
        problems.append("its installed files changed since it was built")
    return Verdict(not problems, problems, verdict.pins, verdict.imported,
                   verdict.fingerprint, verdict.verified)


# -- building -----------------------------------------------------------------------------


class _Steps:
    """Numbered steps with elapsed times: "[3/5] installing …", then "done in 4.1 s"."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.started = time.perf_counter()
        self.number = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.number += 1
        self.progress(f"[{self.number}/{STEPS}] {text}")
        began = time.perf_counter()
        yield
        self.progress(
            f"[{self.number}/{STEPS}] done in {time.perf_counter() - began:.1f} s "
            f"({self.elapsed():.1f} s so far)"
        )


def ensure(
    python: str | None = None, *, force: bool = False, progress: Progress = stderr_progress
) -> tuple[_envs.Manifest, bool]:
    """The ready environment for this client, built if needed; (manifest, reused)."""
    steps = _Steps(progress)
    with steps.step(f"finding Python {WORKER_PYTHON}"):
        target = plan(python)
        progress(
            f"      {target.interpreter.path} "
            f"({target.interpreter.version}, {target.interpreter.how}); "
            f"environment {target.key}"
        )
    with _locked(target.key):
        manifest = _envs.read_manifest(target.path)
        if manifest is not None and not force:
            verdict = reusable(manifest, check(manifest.python, full=False))
            if verdict.ok:
                progress(
                    f"ready: reused {target.path} in {steps.elapsed():.1f} s ({verdict.text()})"
                )
                return manifest, True
            progress(f"{target.path} does not match ({verdict.text()}): rebuilding it")
        return _build(target, steps), False


def _build(target: Target, steps: _Steps) -> _envs.Manifest:
    shutil.rmtree(target.path, ignore_errors=True)
    python = _envs.env_python(target.path)
    with steps.step(f"creating {target.path} with {target.installer}"):
        if target.uv:
            _run(
                [
                    target.uv,
                    "venv",
                    "--no-config",
                    "-q",
                    "--python",
                    target.interpreter.path,
                    str(target.path),
                ],
                "uv venv",
            )
        else:
            _run(python_argv(target.interpreter.path, "-m", "venv", str(target.path)),
                 "python -m venv")
    with steps.step(f"installing {len(_pins.pins())} locked packages with {target.installer}"):
        _install_lock(target, python)
    with steps.step(f"installing scm-worker {__version__}"):
        _install_worker_package(python)
    with steps.step("checking it: versions and files match the lock, DoWhy imports"):
        verdict = check(python, full=True)
        if not verdict.ok:
            raise SetupFailed(
                f"the new environment at {target.path} failed its check: {verdict.text()}"
            )
    manifest = _envs.Manifest(
        key=target.key,
        path=str(target.path),
        worker_version=__version__,
        pins_sha256=_pins.pins_digest(),
        base_python=target.interpreter.path,
        python_version=target.interpreter.version,
        installer=target.installer,
        build_seconds=round(steps.elapsed(), 2),
        created=time.time(),
        content_sha256=verdict.fingerprint,
    )
    _envs.write_manifest(manifest)
    steps.progress(
        f"ready: built {target.path} in {steps.elapsed():.1f} s with {target.installer} "
        f"({verdict.text()})"
    )
    return manifest


def _install_lock(target: Target, python: Path) -> None:
    """Install the lock, every artifact checked against the hashes it lists.

    ``--require-hashes`` also refuses a package the lock lists without a hash. The lock
    carries its build options (wheels only, where a package has wheels), which both
    installers read from it. A mismatch fails the build before anything is installed.
    """
    lock = str(_pins.pins_path())
    if target.uv:
        argv = [target.uv, "pip", "install", "--no-config", "-q", "--require-hashes",
                "--compile-bytecode",  # pip compiles by default; see _compile
                "--python", str(python), "-r", lock]
        what = "uv pip install"
    else:
        argv = python_argv(str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", "--require-hashes", "-r", lock)
        what = "pip install"
    try:
        _run(argv, what)
    except SetupFailed as exc:
        if "hash" not in exc.output.lower():
            raise
        raise SetupFailed(
            f"{what} refused a package that does not match the hashes of the lock "
            f"({lock}): a download that is not the locked artifact, or a lock edited by "
            f"hand; {target.path} is not ready",
            exc.output,
        ) from exc


def _install_worker_package(python: Path) -> None:
    """Copy this distribution's own scm_worker package into the environment's site-packages.

    The wheel carries the worker beside the client, so the environment gets exactly the
    worker of this client's version, from the installed distribution alone.
    """
    spec = importlib.util.find_spec("scm_worker")
    if spec is None or spec.origin is None:
        raise SetupFailed(
            "this installation has no scm_worker package to install (reinstall scm-worker)"
        )
    done = run_quietly(
        python_argv(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    )
    if done is None or done.returncode != 0:
        raise SetupFailed(f"{python} cannot report its site-packages")
    target = Path(done.stdout.strip()) / "scm_worker"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        Path(spec.origin).parent, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _compile(python, target)


def _compile(python: Path, package: Path) -> None:
    """Write the package's bytecode now, with the environment's own interpreter.

    Left to the first import, it is never written where PYTHONDONTWRITEBYTECODE is set
    (common in containers) or where the user running the worker cannot write the
    environment (one built for a shared daemon): every worker start would compile its
    sources again. The installers do the same for the pinned stack: DoWhy's imports
    take 13-14 s without bytecode, 4-5 s with it (docs/INSTALL.md, "Bytecode").
    """
    done = run_quietly(python_argv(str(python), "-m", "compileall", "-q", str(package)))
    if done is None or done.returncode != 0:
        raise SetupFailed(f"{python} could not compile {package}")


def _run(argv: list[str], what: str) -> None:
    """Run one installer step; its output is shown only when it fails."""
    cwd = _envs.envs_dir()  # not the caller's project, whose config uv or pip might read
    try:
        done = subprocess.run(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
    except OSError as exc:
        raise SetupFailed(f"{what} could not be started: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-30:])
        raise SetupFailed(f"{what} failed (exit code {done.returncode})", tail)


@contextmanager
def _locked(key: str) -> Iterator[None]:
    """One build per key at a time; the kernel drops the lock if its holder is killed."""
    root = _envs.envs_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- removing -----------------------------------------------------------------------------


def remove_all() -> list[Path]:
    """Delete every provisioned environment (finished or not) and its lock; returns the paths."""
    removed = []
    for path in _envs.env_dirs():
        with _locked(path.name):
            shutil.rmtree(path)
        (path.parent / f"{path.name}.lock").unlink(missing_ok=True)
        removed.append(path)
    return removed
