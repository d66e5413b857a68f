"""Soak: thousands of mixed requests from four threads with faults injected at random.

Short by default (CI): SCM_SOAK_REQUESTS (default 300). The full run, 2,000 requests,
on demand, once the worker env exists: ``SCM_SOAK_FULL=1 make test TOX_ARGS='-e reliability'
PYTEST_ARGS='-m soak -s'``.
SCM_SOAK_SEED replays a run; SCM_SOAK_REPORT=path writes the figures as JSON.

Requests: pings, sleeps echoing their seconds, handshakes, samples (compared with a
reference drawn at the start with the same seed: the whole sample, value for value),
effects, small fits, and every kind of error (invalid params quoting the call's own
value, unknown methods, a handler raising). The model is persisted, so it survives
every restart. Faults, one at a time, while the other threads keep calling:
``debug.exit`` (the worker exits), SIGKILL of the worker, and a hung call
(``debug.sleep`` past its timeout: the client kills the worker); each kind at least once
(at a random place), more at random, about one request in FAULT_EVERY.

Accounting: a call is *served* when it returns its own correct answer (or its own
expected error); *lost* when it hangs (no answer within 120 s), gets an answer that is
not its own, or raises something that is not a WorkerError. A WorkerCrashed is
allowed only for a call that was in flight while a fault was being injected
(*failed by a fault*); anywhere else it is *unexplained*. Lost and unexplained must be
0, and every fault must be survived: the next call after it restarts the worker and
succeeds. RSS growth is measured over a last fault-free stretch on one worker process.
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scm_client import (
    InternalError,
    InvalidParams,
    MethodNotFound,
    Worker,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
)

from reliability_support import CHAIN_GRAPH, chain_traces, join_all, rss_kb
from support.procs import wait_until
from support.worker_env import ONE_THREAD

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: it shadows nothing
import provenance  # noqa: E402 - benchmarks/provenance.py: the commit the report's figures describe

FULL = os.environ.get("SCM_SOAK_FULL") == "1"
REQUESTS = int(os.environ.get("SCM_SOAK_REQUESTS", "2000" if FULL else "300"))
THREADS = 4
FAULT_EVERY = 40  # on average, one fault per this many requests
CALL_TIMEOUT = 120.0
SEEDS = range(12)
FAULT_KINDS = ("exit", "kill", "hang")
DO_X = [{"type": "hard", "node": "X", "value": 1.0}]


@dataclass
class Tally:
    served: int = 0
    lost: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    failed_by_fault: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    survived: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rss: dict[int, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, worker: Worker, model_id: str, seed: int) -> None:
        self.worker = worker
        self.model_id = model_id
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.tally = Tally()
        self.fault_lock = threading.Lock()
        self.epoch = 0  # odd while a fault is being injected and recovered from
        self.reference: dict[tuple[str, int], Any] = {}
        self.reference_lock = threading.Lock()
        self.next_index = 0
        self.forced: dict[int, str] = {}  # request index → a fault injected there whatever the draw

    # -- one normal request: returns None when the answer is its own, else what was wrong
    def normal(self, k: int, kind: str) -> str | None:
        w, model = self.worker, self.model_id
        if kind == "ping":
            return None if w.ping(timeout=CALL_TIMEOUT) == "pong" else "ping"
        if kind == "sleep":
            seconds = k / 1e7
            got = w.call("debug.sleep", {"seconds": seconds}, timeout=CALL_TIMEOUT)
            return None if got == seconds else f"sleep {seconds} got {got}"
        if kind == "initialize":
            info = w.call("initialize", timeout=CALL_TIMEOUT)
            return None if info["protocol_version"] == 1 and "sample" in info["methods"] else f"initialize {info}"
        if kind == "sample":
            seed, n = SEEDS[k % len(SEEDS)], (10, 50)[k % 2]
            drawn = w.sample(model, "interventional", DO_X, num_samples=n, seed=seed, timeout=CALL_TIMEOUT)
            return None if drawn.samples == self.reference[("sample", seed * 100 + n)] else f"sample seed {seed} n {n}"
        if kind == "effect":
            seed = SEEDS[k % len(SEEDS)]
            got = w.effect(model, "Z", DO_X, [], num_samples=100, seed=seed, timeout=CALL_TIMEOUT).raw["effect"]
            with self.reference_lock:
                expected = self.reference.setdefault(("effect", seed), got)
            return None if got == expected else f"effect seed {seed}: {got} != {expected}"
        if kind == "fit":
            seed = k % 3
            fitted = w.fit(CHAIN_GRAPH, chain_traces(seed, rows=150), seed=seed, cache=False, timeout=CALL_TIMEOUT)
            got = json.dumps([fitted.scm, fitted.validation], sort_keys=True)
            with self.reference_lock:
                expected = self.reference.setdefault(("fit", seed), got)
            return None if got == expected else f"fit seed {seed} differs"
        if kind == "bad_params":
            try:
                w.call("sample", {"model_id": model, "num_samples": -k}, timeout=CALL_TIMEOUT)
            except InvalidParams as exc:
                return None if exc.field == "num_samples" and f"got {-k}" in (exc.reason or "") else f"bad {k}: {exc}"
            return "bad params accepted"
        if kind == "no_method":
            try:
                w.call(f"no.such.{k}", timeout=CALL_TIMEOUT)
            except MethodNotFound as exc:
                return None if exc.data == f"no.such.{k}" else f"no.such.{k}: {exc.data}"
            return "unknown method accepted"
        if kind == "raise":
            try:
                w.call("debug.raise", {"message": f"soak-{k}"}, timeout=CALL_TIMEOUT)
            except InternalError as exc:
                return None if exc.message.endswith(f"soak-{k}") else f"raise {k}: {exc.message}"
            return "debug.raise returned"
        listing = w.call("models.list", timeout=CALL_TIMEOUT)
        return None if model in {m["model_id"] for m in listing["models"]} else "models.list lost the model"

    MIX = (["ping"] * 5 + ["sleep"] * 2 + ["initialize"] + ["sample"] * 4 + ["effect"] + ["fit"] + ["bad_params"] * 2
           + ["no_method"] + ["raise"] + ["models"])

    def run_normal(self, k: int, kind: str) -> None:
        start_epoch = self.epoch
        try:
            problem = self.normal(k, kind)
        except WorkerCrashed as exc:
            if start_epoch % 2 or self.epoch != start_epoch:
                with self.tally.lock:
                    self.tally.failed_by_fault += 1
                return
            problem = f"unexplained crash: {str(exc).splitlines()[0]}"
            with self.tally.lock:
                self.tally.unexplained.append(f"{kind} {k}: {problem}")
            return
        except WorkerTimeout as exc:
            problem = f"hung: {exc}"
        except WorkerError as exc:
            with self.tally.lock:
                self.tally.unexplained.append(f"{kind} {k}: {exc!r}")
            return
        except Exception as exc:  # noqa: BLE001 - not a WorkerError: lost
            problem = f"{exc!r}"
        with self.tally.lock:
            if problem is None:
                self.tally.served += 1
                self.tally.kinds[kind] += 1
            else:
                self.tally.lost.append(f"{kind} {k}: {problem}")
        self.sample_rss()

    def sample_rss(self) -> None:
        pid = self.worker.pid
        try:
            rss = rss_kb(pid) if pid is not None else None
        except (OSError, KeyError):
            return
        if rss is not None:
            with self.tally.lock:
                self.tally.rss.setdefault(pid, []).append(rss)

    # -- faults, one at a time --------------------------------------------------------------
    def fault(self, k: int, kind: str) -> None:
        with self.fault_lock:
            self.epoch += 1
            try:
                self.inject(k, kind)
                self.tally.faults[kind] += 1
                # survived: the next call restarts the worker and is answered
                if self.worker.ping(timeout=CALL_TIMEOUT) == "pong":
                    with self.tally.lock:
                        self.tally.survived += 1
            except BaseException as exc:  # noqa: BLE001 - a fault that did not go as expected
                with self.tally.lock:
                    self.tally.unexplained.append(f"fault {kind} {k}: " + "".join(traceback.format_exception(exc)))
            finally:
                self.epoch += 1

    def inject(self, k: int, kind: str) -> None:
        w = self.worker
        if kind == "exit":
            code = 1 + k % 100
            with pytest.raises(WorkerCrashed) as caught:
                w.call("debug.exit", {"code": code}, timeout=CALL_TIMEOUT)
            assert caught.value.exit_code == code, caught.value
        elif kind == "kill":
            w.ping(timeout=CALL_TIMEOUT)  # make sure there is a worker to kill
            victim, channel = w.pid, w._channel
            assert victim is not None and channel is not None
            os.kill(victim, signal.SIGKILL)
            # until the client has seen the death, a call is still sent to the dying worker (whose
            # threads may not all have exited) and fails as a pending call, which is the contract
            wait_until(lambda: not channel.alive, 30, "the client to see the worker die")
        else:  # a hung call: the client kills the worker after the timeout
            with pytest.raises(WorkerTimeout):
                w.call("debug.sleep", {"seconds": 300}, timeout=0.5)

    # -- the run -----------------------------------------------------------------------------
    def draw(self) -> tuple[int, str] | None:
        with self.rng_lock:
            if self.next_index >= self.requests:
                return None
            k = self.next_index
            self.next_index += 1
            if k in self.forced:
                return k, "fault:" + self.forced[k]
            if self.faults_on and self.rng.random() < 1 / FAULT_EVERY:
                return k, "fault:" + self.rng.choice(FAULT_KINDS)
            return k, self.rng.choice(self.MIX)

    def run(self, requests: int, faults: bool) -> float:
        self.requests, self.faults_on, self.next_index = requests, faults, 0
        # each kind of fault at least once, at a random place: "every fault survived" is never vacuous
        self.forced = dict(zip(self.rng.sample(range(requests), len(FAULT_KINDS)), FAULT_KINDS)) if faults else {}
        started = time.monotonic()

        def loop() -> None:
            while (item := self.draw()) is not None:
                k, kind = item
                if kind.startswith("fault:"):
                    self.fault(k, kind.split(":", 1)[1])
                else:
                    self.run_normal(k, kind)

        threads = [threading.Thread(target=loop, daemon=True, name=f"soak-{t}") for t in range(THREADS)]
        for thread in threads:
            thread.start()
        join_all(threads, timeout=requests * 5 + 600)
        return time.monotonic() - started


@pytest.mark.soak
def test_soak_mixed_requests_with_random_faults_lose_nothing(tmp_path: Path, make_worker: Callable[..., Worker]) -> None:
    measured = provenance.measured_at()  # before anything runs: the code these figures describe
    seed = int(os.environ.get("SCM_SOAK_SEED", str(random.randrange(2**32))))
    print(f"soak: {REQUESTS} requests, seed {seed} (SCM_SOAK_SEED={seed} replays the draw)")
    worker = make_worker(worker_args=("--no-warmup", "--test-methods", *ONE_THREAD, "--store", str(tmp_path / "store")),
                         max_restarts=10, cancel_grace=0)  # a hung call is a fault: killed, not cancelled
    info = worker.call("initialize", timeout=CALL_TIMEOUT)
    machine = {"cpus": os.cpu_count(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
               "client_python": platform.python_version(), "worker_python": info["python_version"],
               "dowhy": info["dowhy_version"]}
    model = worker.fit(CHAIN_GRAPH, chain_traces(7), seed=7, persist=True).model_id
    soak = Soak(worker, model, seed)
    for s in SEEDS:  # the reference samples, before any fault
        for n in (10, 50):
            soak.reference[("sample", s * 100 + n)] = worker.sample(model, "interventional", DO_X, num_samples=n, seed=s).samples
    random_phase = soak.run(REQUESTS, faults=True)
    tally = soak.tally
    faults_injected = sum(tally.faults.values())
    served_with_faults, kinds_with_faults = tally.served, Counter(tally.kinds)

    # a last stretch without faults on one worker process: its RSS growth
    stretch = REQUESTS if FULL else max(100, REQUESTS // 4)
    soak.run(20, faults=False)  # every request kind once more after the last restart
    pid = worker.pid
    assert pid is not None
    rss_start = rss_kb(pid)
    stretch_seconds = soak.run(stretch, faults=False)
    assert worker.pid == pid, "the fault-free stretch restarted the worker"
    rss_end = rss_kb(pid)

    figures = {
        "measured": measured, "machine": {**machine, "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "full": FULL, "fault_every": FAULT_EVERY,
        "requests": REQUESTS, "seed": seed, "threads": THREADS, "seconds": round(random_phase, 1),
        "served": tally.served, "served_with_faults": served_with_faults,
        "stretch_served": tally.served - served_with_faults,
        "stretch_kinds": dict(Counter(tally.kinds) - kinds_with_faults),
        "failed_by_fault": tally.failed_by_fault, "lost": len(tally.lost),
        "unexplained": len(tally.unexplained), "faults_injected": faults_injected, "faults_survived": tally.survived,
        "faults": dict(tally.faults), "restarts": worker.starts - 1, "kinds": dict(tally.kinds),
        "stretch_requests": stretch + 20, "stretch_seconds": round(stretch_seconds, 1), "rss_stretch_requests": stretch,
        "rss_stretch_start_kb": rss_start, "rss_stretch_end_kb": rss_end, "rss_growth_kb": rss_end - rss_start,
        "rss_max_kb": max((max(v) for v in tally.rss.values()), default=None),
        # the worker process that lived longest between faults: requests it answered, RSS first/last
        "longest_life": max(({"requests": len(v), "rss_first_kb": v[0], "rss_last_kb": v[-1]}
                             for p, v in tally.rss.items() if p != pid), key=lambda x: x["requests"], default=None),
    }
    print("soak figures: " + json.dumps(figures))
    if report := os.environ.get("SCM_SOAK_REPORT"):
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    for problem in tally.lost + tally.unexplained:
        print("soak problem: " + problem)
    assert tally.lost == [], tally.lost[:20]
    assert tally.unexplained == [], tally.unexplained[:20]
    assert set(tally.faults) == set(FAULT_KINDS), f"faults injected: {dict(tally.faults)} (seed {seed})"
    assert tally.survived == faults_injected
    assert tally.served + tally.failed_by_fault + faults_injected == REQUESTS + stretch + 20
    assert worker.starts == 1 + faults_injected
    assert rss_end - rss_start < 256 * 1024, f"RSS grew {rss_end - rss_start} kB over {stretch} requests"
