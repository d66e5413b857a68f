"""A Dask cluster of real processes on loopback: a ``dask scheduler`` and ``dask worker
--preload scm_worker.cluster`` processes on 127.0.0.1, started from the worker
interpreter (3.11). ``protocol="tls"`` with ``env`` holding Dask's TLS configuration
(``DASK_DISTRIBUTED__COMM__TLS__*``) makes every one of them speak TLS only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 240.0


@dataclass
class DaskCluster:
    python: str
    directory: Path
    protocol: str = "tcp"
    #: added to the environment of the scheduler, the workers and the start-up client
    env: dict[str, str] = field(default_factory=dict)
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def scheduler_file(self) -> Path:
        return self.directory / "scheduler.json"

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        env = {**os.environ, "XDG_CACHE_HOME": str(self.directory / "cache"), **self.env}
        return subprocess.Popen([self.python, *argv], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=self.directory)

    def start(self, n_workers: int) -> None:
        self.scheduler = self.spawn("scheduler", [
            "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--protocol", self.protocol, "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + START_TIMEOUT
        while not self.scheduler_file.exists():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start:\n{self.logs()}")
            time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        assert self.address.startswith(f"{self.protocol}://127.0.0.1:")
        self.workers = [self.spawn(f"worker{i}", [
            "-m", "distributed.cli.dask_worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1",
            "--preload", "scm_worker.cluster", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
            "--local-directory", str(self.directory / "dask")]) for i in range(n_workers)]
        if not n_workers:
            return
        wait = ("import sys; from distributed import Client; c = Client(scheduler_file=sys.argv[1], timeout='30s'); "
                "c.wait_for_workers(int(sys.argv[2]), timeout=float(sys.argv[3])); c.close()")
        done = subprocess.run([self.python, "-c", wait, str(self.scheduler_file), str(n_workers),
                               str(START_TIMEOUT)], check=False, capture_output=True, text=True,
                              timeout=START_TIMEOUT + 30, env={**os.environ, **self.env})
        if done.returncode != 0:
            raise RuntimeError(f"Dask workers did not register: {done.stderr[-2000:]}\n{self.logs()}")

    def kill_worker(self, index: int) -> None:
        """SIGKILL a whole ``dask worker`` (nanny and worker process): it is gone for good."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)

    def stop(self) -> None:
        procs = [*self.workers, *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted(self.directory.glob("*.log")))


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
