"""Installed as a user would: the built wheel in a fresh 3.13 venv, then `scm setup`, from anywhere.

Everything is a real process: uv builds the wheel and sdist of this checkout and a fresh
Python 3.13 virtualenv outside it; the installed `scm setup` finds a Python 3.11 by
itself and builds the worker environment in a temporary data directory (uv's package
cache stays warm, as it would on a developer's machine); then, from an unrelated working
directory and with no SCM_WORKER_PYTHON nor PYTHONPATH, the installed client does real
work. A build killed half-way, the pip fallback and a worker of another version are
exercised too. Setup times are printed (run with -s to see them), never asserted tightly.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "client" / "scm_client" / "worker-requirements.txt"
FIXTURE = ROOT / "tests" / "fixtures" / "linear_chain.json"
E2E = Path(__file__).resolve().parent
SETUP_LIMIT = 900.0  # liveness only: a pip build on a loaded machine takes minutes


def find_uv() -> str:
    """uv beside this interpreter (tox's e2e env installs it), on PATH, or $SCM_TEST_UV."""
    for candidate in (os.environ.get("SCM_TEST_UV"), str(Path(sys.executable).with_name("uv")), shutil.which("uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv not found: tox's e2e env installs it (requirements-test.txt); or set SCM_TEST_UV", pytrace=False)


def base_python313() -> str:
    """The interpreter behind this (venv's) Python 3.13, for a fresh venv of the user's."""
    name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(Path(sys.base_prefix) / "bin" / name)


def uv_cache() -> str:
    """A warm package cache: the developer's own (tox points XDG_CACHE_HOME at a temporary one)."""
    return os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")


@dataclass
class Install:
    """A fresh client venv outside the checkout and where its user works."""

    venv: Path
    cwd: Path
    uv_dir: str

    @property
    def scm(self) -> str:
        return str(self.venv / "bin" / "scm")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, data: Path, *, with_uv: bool = True, **extra: str) -> dict[str, str]:
        """The user's environment: no SCM_WORKER_PYTHON, no PYTHONPATH; uv on PATH or not at all."""
        env = {k: v for k, v in os.environ.items()
               if k not in {"SCM_WORKER_PYTHON", "PYTHONPATH", "SCM_AUTO_SETUP", "SCM_INSTALLER", "VIRTUAL_ENV",
                             "UV_COMPILE_BYTECODE"}}
        path = [d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "uv").exists()]
        env["PATH"] = os.pathsep.join(([self.uv_dir] if with_uv else []) + path)
        env["SCM_DATA_DIR"] = str(data)
        env["UV_CACHE_DIR"] = uv_cache()
        env.update(extra)
        return env

    def run(self, argv: list[str], data: Path, timeout: float = SETUP_LIMIT, with_uv: bool = True,
            **kw: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.cwd, env=self.env(data, with_uv=with_uv, **kw),
                              capture_output=True, text=True, timeout=timeout, check=False)

    def setup(self, data: Path, *args: str, with_uv: bool = True) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.perf_counter()
        done = self.run([self.scm, "setup", *args], data, with_uv=with_uv)
        return done, time.perf_counter() - started


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and sdist of this checkout, built by uv into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([find_uv(), "build", "--no-config", "-q", "--out-dir", str(out), str(ROOT)],
                   check=True, env={**os.environ, "UV_CACHE_DIR": uv_cache()}, timeout=600)
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


@pytest.fixture(scope="module")
def install(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Install:
    """`uv venv` + `uv pip install WHEEL` with Python 3.13, outside the checkout."""
    return install_wheel(dist["wheel"], tmp_path_factory.mktemp("user"))


def install_wheel(wheel: Path, home: Path) -> Install:
    """A fresh client venv in HOME with WHEEL installed, and an empty project directory."""
    venv, cwd = home / "venv", home / "project"
    cwd.mkdir()
    uv = find_uv()
    env = {**os.environ, "UV_CACHE_DIR": uv_cache()}
    subprocess.run([uv, "venv", "--no-config", "-q", "--python", base_python313(), str(venv)],
                   check=True, env=env, timeout=600)
    subprocess.run([uv, "pip", "install", "--no-config", "-q", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True, env=env, timeout=600)
    assert not str(venv).startswith(str(ROOT)) and not (venv / "bin" / "uv").exists()
    return Install(venv, cwd, str(Path(uv).parent))


@pytest.fixture(scope="module")
def ready(install: Install, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory in which `scm setup` (with uv) built the worker environment."""
    data = tmp_path_factory.mktemp("data")
    done, seconds = install.setup(data)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"\nscm setup (uv, warm cache): {seconds:.1f} s")
    assert "with uv" in done.stderr and re.search(r"\[5/5\] done in [\d.]+ s", done.stderr)
    yield data


def show_timing(label: str, seconds: float) -> None:
    print(f"\n{label}: {seconds:.1f} s")


_UNCOMPILED = """\
import importlib.util, pathlib, sysconfig
root = pathlib.Path(sysconfig.get_paths()["purelib"])
sources = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
missing = [str(p.relative_to(root)) for p in sources
           if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]
print(len(sources), *missing)
"""


def assert_compiled(python: str) -> None:
    """Every source in the environment has its bytecode, scm_worker's own included.

    A first import writes bytecode only for what it imports, and never where
    PYTHONDONTWRITEBYTECODE is set, so a worker that started earlier in this module
    cannot make this pass: it takes the installers' compile step.
    """
    done = subprocess.run([python, "-c", _UNCOMPILED], capture_output=True, text=True, timeout=120,
                          check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    total, *missing = done.stdout.split()
    assert int(total) > 1000, done.stdout  # the whole pinned stack, not an empty directory
    assert missing == [], f"{len(missing)} of {total} sources without bytecode, e.g. {missing[:5]}"


# -- the distribution ---------------------------------------------------------------------


def test_wheel_and_sdist_carry_the_pins_identical_and_the_worker(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        assert wheel.read("scm_client/worker-requirements.txt") == PINS.read_bytes()
        names = set(wheel.namelist())
    assert {"scm_worker/__main__.py", "scm_worker/server/protocol.py", "scm_client/provision.py"} <= names
    with tarfile.open(dist["sdist"]) as sdist:
        [member] = [m for m in sdist.getmembers() if m.name.endswith("client/scm_client/worker-requirements.txt")]
        extracted = sdist.extractfile(member)
        assert extracted is not None and extracted.read() == PINS.read_bytes()


# -- setup, then use from anywhere ----------------------------------------------------------


def test_doctor_from_an_unrelated_directory_finds_the_provisioned_environment(install: Install, ready: Path) -> None:
    done = install.run([install.scm, "doctor"], ready)
    assert done.returncode == 0, done.stdout + done.stderr
    [env_dir] = [p for p in (ready / "envs").iterdir() if p.is_dir()]
    assert re.search(rf"ok\s+worker python\s+3\.11\.\d+ \({re.escape(str(env_dir))}/bin/python, "
                     r"from provisioned by scm setup\)", done.stdout)
    assert re.search(rf"ok\s+worker env\s+key {env_dir.name}, built with uv", done.stdout)
    assert re.search(r"ok\s+pins\s+ok: \d+ pins match", done.stdout)
    assert "ready: the client can start the worker" in done.stdout


def test_scm_fit_from_an_unrelated_directory(install: Install, ready: Path) -> None:
    done = install.run([install.scm, "fit", str(FIXTURE), "--seed", "42", "--json"], ready, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "success" and result["validation"]["passed"] is True
    assert result["scm"]["mechanisms"]["Y"]["type"] == "linear"


_LIFT_SYS = """\
import json, sys
sys.path.insert(0, sys.argv[1])  # the stand-ins for networkx and pandas only
from fakes import FakeDataFrame, FakeDiGraph, load_fixture
import scm_client
from scm_client.compat import DoWhyClient
graph, frame = load_fixture("linear_chain")
client = DoWhyClient(timeout=300.0)  # liveness only: the first fit also warms the worker up
fit = client.fit_scm(graph, frame)
query = client.query_scm(graph, frame, [{"type": "hard", "node": "X", "value": 2.0}], num_samples=500)
print(json.dumps({"client": scm_client.__file__, "python": str(client.python_path), "fit": fit, "query": query}))
"""


def test_lift_sys_client_fits_and_queries_from_an_unrelated_directory(install: Install, ready: Path) -> None:
    done = install.run([install.python, "-c", _LIFT_SYS, str(E2E)], ready, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["client"].startswith(str(install.venv)) and answer["python"].startswith(str(ready))
    assert answer["fit"]["status"] == "success"
    assert answer["query"]["status"] == "success" and "Z" in answer["query"]["statistics"]


def test_second_setup_reuses_the_environment(install: Install, ready: Path) -> None:
    before = {p.name for p in (ready / "envs").iterdir()}
    done, seconds = install.setup(ready)
    show_timing("second scm setup (reuse)", seconds)
    assert done.returncode == 0, done.stderr
    assert "ready: reused" in done.stderr and seconds < 60.0  # the bar is 2 s: see the printed figure
    assert {p.name for p in (ready / "envs").iterdir()} == before
    check = install.run([install.scm, "setup", "--check"], ready, timeout=300)
    assert check.returncode == 0 and re.search(r": ok: \d+ pins match, scm-worker [\d.]+, DoWhy imports", check.stdout)


def test_setup_compiles_the_environment_so_no_worker_start_compiles_it(install: Install, ready: Path) -> None:
    done = install.run([install.scm, "setup"], ready)
    assert done.returncode == 0, done.stderr
    assert_compiled(done.stdout.strip())


# -- interrupted builds, the pip fallback, auto-setup, removal ----------------------------------


_WORKER_PICK = """\
import sys
from scm_client import Worker, WorkerNotFound
try:
    Worker().start()
except WorkerNotFound as exc:
    print("not found:", exc)
    sys.exit(3)
print("started")
"""


def test_a_setup_killed_mid_install_leaves_nothing_worker_picks_and_pip_finishes_it(install: Install,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("killed")
    # pip is slow enough to be killed in the middle of installing the pins
    proc = subprocess.Popen([install.scm, "setup"], cwd=install.cwd, env=install.env(data, with_uv=False),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "[3/5] installing" in line:
                break
        time.sleep(3.0)
        assert proc.poll() is None, "the pip install finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    [partial] = [p for p in (data / "envs").iterdir() if p.is_dir()]
    assert (partial / "bin" / "python").exists() and not (partial / "scm-env.json").exists()
    picked = install.run([install.python, "-c", _WORKER_PICK], data, timeout=120)
    assert picked.returncode == 3, picked.stdout + picked.stderr
    assert "`scm setup`" in picked.stdout and "make venvs" not in picked.stdout

    # a command's --yes builds it over the remains without asking, as `scm setup` does; with
    # no uv anywhere on PATH, with pip (the fallback's one full build in this file)
    started = time.perf_counter()
    built = install.run([install.scm, "fit", str(FIXTURE), "--yes"], data, with_uv=False)
    show_timing("scm fit --yes after a killed build (pip, no uv)", time.perf_counter() - started)
    assert built.returncode == 0 and re.search(r"status\s+success", built.stdout), built.stderr
    assert "[5/5]" in built.stderr and (partial / "scm-env.json").exists()
    assert "with pip" in built.stderr and "with uv" not in built.stderr
    assert json.loads((partial / "scm-env.json").read_text())["installer"] == "pip"
    assert_compiled(str(partial / "bin" / "python"))
    assert [p for p in (data / "envs").iterdir() if p.is_dir()] == [partial]
    assert install.run([install.python, "-c", _WORKER_PICK], data, timeout=300).stdout.strip() == "started"
    doctor = install.run([install.scm, "doctor"], data, with_uv=False, timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    removed = install.run([install.scm, "setup", "--remove"], data)
    assert removed.returncode == 0 and f"removed {partial}" in removed.stdout and not partial.exists()


def test_auto_setup_provisions_on_first_use(install: Install, tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("auto")
    done = install.run([install.python, "-c", _WORKER_PICK], data, timeout=SETUP_LIMIT, SCM_AUTO_SETUP="1")
    assert done.returncode == 0 and done.stdout.strip() == "started", done.stdout + done.stderr
    assert "scm setup: [5/5]" in done.stderr  # progress on stderr
    refused = install.run([install.scm, "fit", str(FIXTURE)], tmp_path_factory.mktemp("empty"))
    assert refused.returncode == 1 and "`scm setup`" in refused.stderr and "--yes" in refused.stderr
    # and with --yes it builds without asking: test_a_setup_killed_mid_install_leaves_nothing_worker_picks_and_pip_finishes_it


def test_on_a_terminal_scm_asks_before_building_and_no_means_no(install: Install,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("asked")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([install.scm, "fit", str(FIXTURE)], cwd=install.cwd, env=install.env(data),
                                stdin=follower, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        asked = b""
        while b"[Y/n]" not in asked:
            asked += os.read(leader, 1024)
        os.write(leader, b"n\n")
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(leader)
    assert b"Build it now with `scm setup`" in asked
    assert not (data / "envs").exists() or not [p for p in (data / "envs").iterdir() if p.is_dir()]


# -- version skew -----------------------------------------------------------------------------


def test_a_worker_environment_of_another_version_is_refused(install: Install, ready: Path,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    [good] = [p for p in (ready / "envs").iterdir() if p.is_dir()]
    data = tmp_path_factory.mktemp("skew")
    old = data / "envs" / "0123456789abcdef"
    shutil.copytree(good, old, symlinks=True)  # a venv's python runs from a copy
    manifest = json.loads((old / "scm-env.json").read_text())
    (old / "scm-env.json").write_text(json.dumps({**manifest, "key": old.name, "path": str(old),
                                                  "worker_version": "0.0.1"}))
    [init] = old.glob("lib/python3.11/site-packages/scm_worker/__init__.py")
    init.write_text(re.sub(r'__version__ = "[^"]+"', '__version__ = "0.0.1"', init.read_text()))

    # discovery passes it over, and says so
    found = install.run([install.scm, "fit", str(FIXTURE)], data)
    assert found.returncode == 1
    assert "`scm setup`" in found.stderr and f"{old} is for scm-worker 0.0.1" in found.stderr

    # named explicitly, the handshake refuses it
    forced = install.run([install.scm, "fit", str(FIXTURE)], data, SCM_WORKER_PYTHON=str(old / "bin" / "python"))
    assert forced.returncode == 1
    assert "is scm-worker 0.0.1, this client is" in forced.stderr and "`scm setup`" in forced.stderr


# -- content: the lock's hashes, the files as built ------------------------------------------


def tamper_lock(lock: Path, package: str, how: str) -> None:
    """Give PACKAGE's entry in LOCK one hash of another artifact, or no hash at all."""
    entry = re.compile(rf"^({re.escape(package)}==\S+) \\\n(?:    --hash=sha256:[0-9a-f]{{64}}(?: \\)?\n)+", re.MULTILINE)
    other = "--hash=sha256:" + "0" * 64
    replacement = r"\1 \\" + f"\n    {other}\n" if how == "altered" else r"\1" + "\n"
    tampered, count = entry.subn(replacement, lock.read_text())
    assert count == 1, f"no hashed entry for {package} in {lock}"
    # a new file, not a write through: uv installs by hard-linking its cache's copy
    lock.with_suffix(".tampered").write_text(tampered)
    os.replace(lock.with_suffix(".tampered"), lock)


@pytest.fixture(scope="module")
def tamperable(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Install:
    """A second client venv whose installed lock the tampering tests change (never `install`'s)."""
    return install_wheel(dist["wheel"], tmp_path_factory.mktemp("tampered"))


@pytest.mark.parametrize(("installer", "how"), [("uv", "altered"), ("uv", "missing"), ("pip", "altered")])
def test_a_lock_entry_whose_hash_is_not_the_artifacts_is_refused_and_nothing_is_ready(
        tamperable: Install, tmp_path_factory: pytest.TempPathFactory, installer: str, how: str) -> None:
    """The client's own lock, as installed, tampered for one small package (attrs).

    The venv is shared by the three cases: each first puts the lock back as built (the
    wheel's copy is the checkout's, test_wheel_and_sdist_carry_the_pins_identical_...).
    """
    tampered = tamperable
    [lock] = tampered.venv.glob("lib/python3.*/site-packages/scm_client/worker-requirements.txt")
    lock.with_suffix(".restored").write_bytes(PINS.read_bytes())  # a new file: not into uv's cache
    os.replace(lock.with_suffix(".restored"), lock)
    tamper_lock(lock, "attrs", how)
    data = tmp_path_factory.mktemp("refused")

    done, _ = tampered.setup(data, with_uv=installer == "uv")
    assert done.returncode == 1, done.stdout + done.stderr
    what = "uv pip install" if installer == "uv" else "pip install"
    assert f"{what} refused a package that does not match the hashes of the lock" in done.stderr
    assert "attrs" in done.stderr and "is not ready" in done.stderr
    assert not list(data.glob("envs/*/scm-env.json"))  # nothing is marked ready
    picked = tampered.run([tampered.python, "-c", _WORKER_PICK], data, timeout=120)
    assert picked.returncode == 3, picked.stdout + picked.stderr


def test_an_environment_whose_files_changed_is_named_by_check_and_rebuilt_by_setup(
        install: Install, ready: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    [good] = [p for p in (ready / "envs").iterdir() if p.is_dir()]
    data = tmp_path_factory.mktemp("changed")
    copy = data / "envs" / good.name  # same key: this client's own environment, copied as built
    shutil.copytree(good, copy, symlinks=True)
    reused, _ = install.setup(data)
    assert reused.returncode == 0 and "ready: reused" in reused.stderr, reused.stderr

    [planted] = copy.glob("lib/python3.11/site-packages/networkx/__init__.py")
    planted.with_suffix(".planted").write_text(planted.read_text() + "\nimport os  # planted after the build\n")
    os.replace(planted.with_suffix(".planted"), planted)  # not through a link into uv's cache
    checked = install.run([install.scm, "setup", "--check"], data, timeout=300)
    assert checked.returncode == 1
    assert "networkx: 1 file(s) differ from its RECORD, e.g. networkx/__init__.py" in checked.stdout

    rebuilt, _ = install.setup(data)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "its installed files changed since it was built): rebuilding it" in rebuilt.stderr
    assert "planted" not in planted.read_text()
    again = install.run([install.scm, "setup", "--check"], data, timeout=300)
    assert again.returncode == 0 and re.search(r"DoWhy imports, \d+ files match their RECORD", again.stdout)
