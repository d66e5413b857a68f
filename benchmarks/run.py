"""scm-worker benchmarks: every case measured side by side in one run, on the same data.

    .venv-client/bin/python benchmarks/run.py [--worker-python .venv-worker/bin/python]

Run by the CLIENT interpreter (Python 3.13, scm_client, standard library only). The
DoWhy baselines run under the worker interpreter, in ``benchmarks/inprocess.py`` (warm,
in-process DoWhy) and ``benchmarks/process_per_call.py`` (the old one-process-per-request
design); both build their data with ``benchmarks/datagen.py`` and the driver checks
their checksums against its own. Progress goes to stderr, the table to stdout, and
``benchmarks/RESULTS.md``, ``results.json`` and ``results.png`` are (re)written.

Speed is reported, not asserted: the exit status is 0 whether targets are met or
missed (and 1 only if the benchmark itself failed). This machine may be shared and
noisy, so baselines and worker calls are interleaved and only ratios measured in the
same run are compared; the load average is recorded with the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import datagen
import provenance
from machine import cpu_model, load_average
from scm_client import Worker, WorkerPool

T0 = time.perf_counter()
FIT_CONFIG = {"validate_r2": False}  # report R², never fail a timed call on it


def progress(message: str) -> None:
    print(f"[bench {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- measurements -------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (joblib's loky processes, its resource tracker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (peak) of the process alone and summed with its descendants, in MB."""

    def status(p: int) -> dict[str, float]:
        values = {"VmRSS": 0.0, "VmHWM": 0.0}
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0]) / 1024
        except OSError:
            pass
        return values

    own = status(pid)
    kids = [status(p) for p in descendants(pid)]
    return {
        "rss": own["VmRSS"],
        "peak": own["VmHWM"],
        "rss_total": own["VmRSS"] + sum(k["VmRSS"] for k in kids),
        "peak_total": own["VmHWM"] + sum(k["VmHWM"] for k in kids),
        "children": len(kids),
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all cores from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(interval: float = 1.0) -> float | None:
    """Fraction of all cores busy over ``interval`` (between cases: other jobs' use)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(interval)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)


def _own_jiffies() -> int:
    """CPU time of this process and every process it started (live or reaped), in jiffies."""
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    total = round((own.user + own.system + own.children_user + own.children_system) * tick)
    for pid in descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total


def cpu_snapshot() -> tuple[int, int, int] | None:
    """(all busy, all total, ours) jiffies: the difference of two is what others used."""
    try:
        busy, total = _cpu_times()
        return busy, total, _own_jiffies()
    except (OSError, ValueError, IndexError):
        return None


def others_share(
    start: tuple[int, int, int] | None, end: tuple[int, int, int] | None
) -> float | None:
    """Fraction of all cores that processes outside this benchmark kept busy in between."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    others = (end[0] - start[0]) - (end[2] - start[2])
    return max(0.0, others / (end[1] - start[1]))


# -- the table ----------------------------------------------------------------------


@dataclass
class Row:
    case: str
    measure: str
    baseline: str
    worker: str
    ratio: str
    target: str
    met: bool | None  # None: reported, no target
    # numbers for the plot: the compared value, its target and which side is good
    value: float | None = None
    goal: float | None = None
    better: str = ""  # "higher" or "lower"
    unit: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        verdict = "" if row.met is None else ("  [met]" if row.met else "  [MISSED]")
        progress(
            f"  {row.case} | {row.measure}: {row.baseline} vs {row.worker} → {row.ratio} ({row.target}){verdict}"
        )


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.3f} ms" if seconds < 0.001 else f"{seconds * 1000:.2f} ms"


def fmt_x(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"


# -- the benchmark ------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = args.worker_python
        self.results = Results()
        self.tmp = Path(tempfile.mkdtemp(prefix="scm-bench-"))
        self.data = {name: datagen.case_data(name) for name in ("chain", "dag", "small")}
        self.checksums = {name: datagen.checksum(value) for name, value in self.data.items()}
        self.details = self.results.details
        self.details["checksums"] = self.checksums

    # worker-side helpers ---------------------------------------------------------
    def helper(self, command: str, *options: str, data: str) -> dict[str, Any]:
        """Run benchmarks/inprocess.py under the worker interpreter; check its data checksum."""
        out = self.tmp / f"{command}-{time.monotonic_ns()}.json"
        argv = [
            self.python,
            str(BENCH / "inprocess.py"),
            command,
            "--out",
            str(out),
            "--data",
            data,
            *options,
        ]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        result = json.loads(out.read_text())
        if result["checksum"] != self.checksums[data]:
            raise RuntimeError(
                f"{data}: the helper generated different data ({result['checksum']})"
            )
        return result

    def worker(
        self, *args: str, on_progress: Callable[[dict[str, Any]], None] | None = None
    ) -> Worker:
        return Worker(
            self.python,
            worker_args=("--no-store", *args),
            start_timeout=600,
            on_progress=on_progress,
        )

    def record_stage(self, params: dict[str, Any]) -> None:
        """Progress notifications: when each stage of a fit started (request, fitting, …)."""
        stage = params.get("stage")
        if self.stages is not None and (not self.stages or self.stages[-1][0] != stage):
            self.stages.append((stage, time.perf_counter()))

    def stage_seconds(self, ended: float) -> dict[str, float]:
        marks = (self.stages or []) + [("end", ended)]
        return {name: marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}

    def fit(self, worker: Worker, request: dict[str, Any], **config: Any) -> tuple[float, Any]:
        return timed(
            lambda: worker.fit(request["graph"], request["traces"], **FIT_CONFIG, **config)
        )

    # the run ---------------------------------------------------------------------
    def case(self, name: str, message: str) -> None:
        """Announce a case after waiting (bounded) for a quiet machine; record the load it met.

        The machine may be shared: before each case, wait while other processes keep more
        than ``--quiet-below`` of the CPU busy, for at most ``--max-wait`` seconds per
        case. The busy fraction and load average each case started with are reported.
        """
        waited, busy = 0.0, cpu_busy()
        while (
            busy is not None
            and busy > self.args.quiet_below
            and waited < self.args.max_wait
            and self.waited_total < self.args.max_wait_total
        ):
            if waited == 0:
                progress(
                    f"waiting for a quieter machine before {name!r}: {busy:.0%} of the CPU busy"
                )
            time.sleep(4)
            waited += 5  # the sleep plus cpu_busy's one-second sample
            self.waited_total += 5
            busy = cpu_busy()
        self.end_case()
        load = load_average()
        self.current_case = (name, cpu_snapshot())
        self.details.setdefault("load_by_case", {})[name] = {
            "busy_before": busy,
            "waited_s": waited,
            "load_average": load,
        }
        busy_text = "n/a" if busy is None else f"{busy:.0%}"
        progress(f"{message} [CPU busy {busy_text}, load {load}]")

    def end_case(self) -> None:
        """Record how much CPU other processes used while the last case ran."""
        if self.current_case is None:
            return
        name, started = self.current_case
        self.current_case = None
        share = others_share(started, cpu_snapshot())
        self.details["load_by_case"][name]["others_during"] = share
        if share is not None:
            progress(f"  (other processes used {share:.0%} of the CPU during {name!r})")

    def run(self) -> Results:
        self.details["load_average_start"] = load_average()
        self.current_case: tuple[str, tuple[int, int, int] | None] | None = None
        self.waited_total = 0.0
        self.stages: list[tuple[str, float]] | None = None
        main = self.worker(on_progress=self.record_stage)
        try:
            self.startup(main)
            self.process_per_call(main)
            self.round_trips(main)
            self.cache(main)
            self.big_dag(main)
            self.contention(main)
            memory = memory_mb(main.pid)  # type: ignore[arg-type]
            self.details["memory_after_dag"] = memory
            self.memory_rows(memory)
        finally:
            main.close()
        self.start_variants()
        self.many_small_graphs()
        self.end_case()
        self.details["load_average_end"] = load_average()
        return self.results

    def startup(self, main: Worker) -> None:
        """Case 5 (part): start-to-ready, idle RSS, first fit once warm."""
        self.case("5 start", "case 5: starting the main worker (default threads, --no-store)")
        started = time.perf_counter()
        info = main.start()
        handshake = time.perf_counter() - started
        _wait_warm(main)
        warm = time.perf_counter() - started
        self.details["worker_info"] = {
            k: info.get(k)
            for k in ("worker_version", "python_version", "dowhy_version", "threads", "pid")
        }
        self.details["start"] = {"handshake_s": handshake, "warm_s": warm}
        time.sleep(0.5)
        self.details["memory_idle"] = memory_mb(main.pid)  # type: ignore[arg-type]
        progress(
            f"  handshake after {handshake:.2f}s, warm after {warm:.2f}s; "
            f"idle RSS {self.details['memory_idle']['rss_total']:.0f} MB with children"
        )
        self.first_fit, result = self.fit(main, self.data["chain"], seed=1, cache=False)
        progress(f"  first fit after ready: {fmt_s(self.first_fit)} (mean R² {result.mean_r2:.4f})")

    def process_per_call(self, main: Worker) -> None:
        """Case 1: the old design vs a warm worker on the chain, interleaved."""
        runs, per_run = self.args.ppc_runs, self.args.warm_per_ppc
        self.case(
            "1",
            f"case 1: process-per-call ×{runs} vs warm worker ×{runs * per_run}, chain of 1000 rows, seed 1",
        )
        request = dict(self.data["chain"], config={"seed": 1, "quality": "GOOD"})
        request_bytes = json.dumps(request).encode()
        ppc, warm, ppc_r2, warm_r2 = [], [], [], []
        for i in range(runs):
            seconds, proc = timed(
                lambda: subprocess.run(
                    [self.python, str(BENCH / "process_per_call.py")],
                    input=request_bytes,
                    capture_output=True,
                    check=True,
                    cwd=ROOT,
                )
            )
            ppc.append(seconds)
            ppc_r2.append(json.loads(proc.stdout)["mean_r2"])
            for _ in range(per_run):
                seconds, result = self.fit(main, self.data["chain"], seed=1, cache=False)
                warm.append(seconds)
                warm_r2.append(result.mean_r2)
            progress(
                f"  run {i + 1}/{runs}: process-per-call {fmt_s(ppc[-1])}, warm worker {fmt_s(warm[-1])}"
            )
        self.warm_fit = median(warm)
        self.details["case1"] = {
            "process_per_call_s": ppc,
            "warm_worker_s": warm,
            "process_per_call_mean_r2": ppc_r2[0],
            "worker_mean_r2": warm_r2[0],
        }
        ratio = median(ppc) / self.warm_fit
        self.results.add(
            Row(
                "1 process-per-call vs warm worker",
                "fit, 3-node chain, 1000 rows (median wall)",
                fmt_s(median(ppc)),
                fmt_s(self.warm_fit),
                f"{fmt_x(ratio)} faster",
                "≥ 8× faster",
                ratio >= 8,
                ratio,
                8,
                "higher",
                "×",
            )
        )
        first = self.first_fit / self.warm_fit
        self.results.add(
            Row(
                "5 start-up",
                "first fit once ready (scm-worker) vs warm fit (baseline), chain",
                fmt_s(self.warm_fit),
                fmt_s(self.first_fit),
                fmt_x(first),
                "≤ 1.5×",
                first <= 1.5,
                first,
                1.5,
                "lower",
                "×",
            )
        )

    def round_trips(self, main: Worker) -> None:
        """Case 4: ping and a 1000-row interventional sample."""
        count = self.args.pings
        self.case("4 ping", f"case 4: {count} pings")
        for _ in range(50):
            main.ping()
        pings = [timed(main.ping)[0] for _ in range(count)]
        p50, p99 = percentile(pings, 50), percentile(pings, 99)
        self.details["ping"] = {
            "count": count,
            "p50_ms": p50 * 1000,
            "p99_ms": p99 * 1000,
            "mean_ms": statistics.fmean(pings) * 1000,
            "max_ms": max(pings) * 1000,
        }
        self.results.add(
            Row(
                "4 round trips",
                f"ping p50 (p99 {fmt_s(p99)}, {count} calls)",
                "—",
                fmt_s(p50),
                "—",
                "p50 ≤ 0.3 ms",
                p50 <= 0.0003,
                p50 * 1000,
                0.3,
                "lower",
                "ms",
            )
        )

        repeats = self.args.samples
        self.case(
            "4 sample",
            f"case 4: {repeats} interventional samples of 1000 rows, in-process baseline first",
        )
        baseline = self.helper("sample", "--seed", "5", "--repeats", str(repeats), data="chain")[
            "times"
        ]
        _, model = self.fit(main, self.data["chain"], seed=5, cache=False)
        intervention = [{"type": "hard", "node": "X", "value": 1.0}]
        times, inside = [], []
        for i in range(repeats):
            seconds, result = timed(
                lambda i=i: main.sample(
                    model, "interventional", intervention, num_samples=1000, seed=5 + i
                )
            )
            times.append(seconds)
            inside.append(result.metadata["sampling_time_ms"])
        p50, p99 = percentile(times, 50), percentile(times, 99)
        base50 = percentile(baseline, 50)
        self.details["sample"] = {
            "worker_s": times,
            "worker_sampling_time_ms": inside,
            "inprocess_s": baseline,
        }
        self.results.add(
            Row(
                "4 round trips",
                f"interventional sample, 1000 rows, chain: p50 (p99 {fmt_s(p99)})",
                f"{fmt_s(base50)} (in-process DoWhy)",
                fmt_s(p50),
                fmt_x(p50 / base50),
                "p50 ≤ 10 ms",
                p50 <= 0.010,
                p50 * 1000,
                10,
                "lower",
                "ms",
            )
        )

    def cache(self, main: Worker) -> None:
        """Fit cache: a repeated identical fit vs the fit itself (chain)."""
        hits = self.args.cache_hits
        self.case("cache", f"cache: one fit, then {hits} identical fits (cache hits), chain")
        miss_s, first = self.fit(main, self.data["chain"], seed=7, cache=True)
        hit_s, same = [], True
        for _ in range(hits):
            seconds, again = self.fit(main, self.data["chain"], seed=7, cache=True)
            hit_s.append(seconds)
            same = (
                same
                and again.metadata.get("cache_hit") is True
                and _without_cache_flag(again.raw) == _without_cache_flag(first.raw)
            )
        ratio = miss_s / median(hit_s)
        self.details["cache"] = {
            "fit_s": miss_s,
            "hit_s": hit_s,
            "same_result": same,
            "first_cache_hit_flag": first.metadata.get("cache_hit"),
        }
        self.results.add(
            Row(
                "cache",
                f"cache hit vs fit, chain (identical request; same result: {_yes(same)})",
                fmt_s(miss_s),
                fmt_s(median(hit_s)),
                f"{fmt_x(ratio)} faster",
                "≥ 20× faster, same result",
                ratio >= 20 and same,
                ratio,
                20,
                "higher",
                "×",
            )
        )

    def big_dag(self, main: Worker) -> None:
        """Case 2: in-process DoWhy vs the worker on the 100-node DAG, interleaved, paired seeds."""
        dag = self.data["dag"]
        seeds = [101 + i for i in range(self.args.dag_runs)]
        graph = dag["graph"]
        self.case(
            "2",
            f"case 2: 100-node DAG ({len(graph['edges'])} edges, 1000 rows), seeds {seeds}: "
            "in-process DoWhy then worker, per seed",
        )
        dowhy_runs, worker_runs = [], []
        reference = None
        for n, seed in enumerate(seeds):
            before = cpu_snapshot()
            run = self.helper("dowhy-fit", "--seeds", str(seed), data="dag")["runs"][0]
            run["others_cpu"] = others_share(before, cpu_snapshot())
            before = cpu_snapshot()
            dowhy_runs.append(run)
            last = n == len(seeds) - 1  # the last one goes through the cache so it can be hit next
            self.stages = [("request", time.perf_counter())]
            seconds, result = self.fit(main, dag, seed=seed, cache=last)
            stages = self.stage_seconds(time.perf_counter())
            others = others_share(before, cpu_snapshot())
            self.stages = None
            worker_runs.append(
                {
                    "seed": seed,
                    "seconds": seconds,
                    "mean_r2": result.mean_r2,
                    "fitting_time_ms": result.metadata["fitting_time_ms"],
                    "stages": stages,
                    "others_cpu": others,
                    "models": {
                        node: m.get("model", "empirical")
                        for node, m in result.scm["mechanisms"].items()
                    },
                }
            )
            if n == 0 and self.args.reference_fit:
                progress(
                    "  scm_worker.fit_model called in a plain process (no protocol), for reference"
                )
                reference = self.helper("worker-fit", "--seeds", str(seed), data="dag")["runs"][0]
            progress(
                f"  seed {seed}: DoWhy {fmt_s(run['seconds'])} (assign {fmt_s(run['stages']['assign'])}), "
                f"worker {fmt_s(seconds)} (inside {result.metadata['fitting_time_ms']} ms); mean R² "
                f"{run['mean_r2']:.4f} vs {result.mean_r2:.4f}"
            )
        hit_s, again = self.fit(main, dag, seed=seeds[-1], cache=True)

        d_wall = median([r["seconds"] for r in dowhy_runs])
        w_wall = median([r["seconds"] for r in worker_runs])
        ratio = w_wall / d_wall
        self.results.add(
            Row(
                "2 100-node DAG",
                f"fit wall time (median of {len(seeds)}; per seed "
                + ", ".join(
                    f"{w['seconds'] / d['seconds']:.2f}×" for w, d in zip(worker_runs, dowhy_runs)
                )
                + ")",
                f"{fmt_s(d_wall)} (DoWhy)",
                fmt_s(w_wall),
                f"{ratio:.2f}× DoWhy's time",
                "≤ 0.5× DoWhy's time",
                ratio <= 0.5,
                ratio,
                0.5,
                "lower",
                "×",
            )
        )
        diffs = [w["mean_r2"] - d["mean_r2"] for w, d in zip(worker_runs, dowhy_runs, strict=True)]
        worst = max(diffs, key=abs)
        d_r2 = statistics.fmean(r["mean_r2"] for r in dowhy_runs)
        w_r2 = statistics.fmean(r["mean_r2"] for r in worker_runs)
        self.results.add(
            Row(
                "2 100-node DAG",
                "mean held-out R² (same split per seed; worst paired difference)",
                f"{d_r2:.4f}",
                f"{w_r2:.4f}",
                f"{worst:+.4f}",
                "|Δ| ≤ 0.01",
                abs(worst) <= 0.01,
                abs(worst),
                0.01,
                "lower",
                "ΔR²",
            )
        )
        overheads = [
            (w["seconds"] * 1000 - w["fitting_time_ms"]) / w["fitting_time_ms"] for w in worker_runs
        ]
        overhead_ms = median([w["seconds"] * 1000 - w["fitting_time_ms"] for w in worker_runs])
        inside = median([w["fitting_time_ms"] / 1000 for w in worker_runs])
        self.results.add(
            Row(
                "4 protocol overhead",
                "fit wall at the client − fitting_time_ms (100-node DAG)",
                f"{fmt_s(inside)} fitting_time_ms",
                f"{fmt_s(w_wall)} at the client",
                f"+{overhead_ms:.0f} ms = {median(overheads) * 100:.1f} %",
                "≤ 5 %",
                median(overheads) <= 0.05,
                median(overheads) * 100,
                5,
                "lower",
                "%",
            )
        )
        if reference is not None:
            rel = w_wall / reference["seconds"]
            self.results.add(
                Row(
                    "2 100-node DAG",
                    f"worker fit vs the same fit_model call in a plain process "
                    f"(seed {seeds[0]}, 1 run each, back to back)",
                    fmt_s(reference["seconds"]),
                    fmt_s(worker_runs[0]["seconds"]),
                    fmt_x(worker_runs[0]["seconds"] / reference["seconds"]),
                    "info",
                    None,
                )
            )
            self.details["case2_reference_fit_model"] = dict(reference, ratio_of_median_worker=rel)
        hit_ok = again.metadata.get("cache_hit") is True and _without_cache_flag(
            again.raw
        ) == _without_cache_flag(result.raw)
        self.results.add(
            Row(
                "cache",
                f"cache hit vs fit, 100-node DAG (identical request; same result: {_yes(hit_ok)})",
                fmt_s(worker_runs[-1]["seconds"]),
                fmt_s(hit_s),
                f"{fmt_x(worker_runs[-1]['seconds'] / hit_s)} faster",
                "≥ 20× faster, same result",
                worker_runs[-1]["seconds"] / hit_s >= 20 and hit_ok,
                worker_runs[-1]["seconds"] / hit_s,
                20,
                "higher",
                "×",
            )
        )
        self.details["case2"] = {
            "edges": len(graph["edges"]),
            "non_root_nodes": len({c for _, c in graph["edges"]}),
            "dowhy": dowhy_runs,
            "worker": worker_runs,
            "paired_r2_diffs": diffs,
            "cache_hit_s": hit_s,
        }
        self.details["case2_model_counts"] = {
            "dowhy": _count(dowhy_runs[0]["models"].values()),
            "worker": _count(worker_runs[0]["models"].values()),
            "same_choice_nodes": sum(
                dowhy_runs[0]["models"][n] == worker_runs[0]["models"][n] for n in graph["nodes"]
            ),
        }

    def memory_rows(self, after: dict[str, float]) -> None:
        idle = self.details["memory_idle"]
        self.results.add(
            Row(
                "5 start-up",
                "worker RSS idle after warm-up (worker + joblib children)",
                "—",
                f"{idle['rss']:.0f} MB; {idle['rss_total']:.0f} MB with {idle['children']} children",
                "—",
                "report",
                None,
            )
        )
        self.results.add(
            Row(
                "5 start-up",
                "worker peak RSS (VmHWM) after the 100-node fits",
                "—",
                f"{after['peak']:.0f} MB; {after['peak_total']:.0f} MB with {after['children']} children",
                "—",
                "report",
                None,
            )
        )

    def contention(self, main: Worker) -> None:
        """Info: chain fits while one busy-loop process competes for the cores.

        Shows how sensitive a fit is to other load on the machine, with the worker's
        default threads (BLAS/OpenMP = cores) and with ``--threads 1``.
        """
        chain, n = self.data["chain"], self.args.contention_fits
        self.case("6", f"contention: {n} chain fits quiet, then {n} beside one busy-loop process")

        def fits(worker: Worker) -> list[float]:
            return [self.fit(worker, chain, seed=1, cache=False)[0] for _ in range(n)]

        def beside_hog(worker: Worker) -> list[float]:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                return fits(worker)
            finally:
                hog.kill()
                hog.wait()

        inproc = self.helper("contention", "--repeats", str(n), data="chain")
        measured = {
            "default threads": (fits(main), beside_hog(main)),
            "in-process DoWhy (defaults)": (inproc["quiet_s"], inproc["busy_s"]),
        }
        with self.worker("--threads", "1") as one:
            one.start()
            _wait_warm(one)
            measured["--threads 1"] = (fits(one), beside_hog(one))
        for label, (quiet, hogged) in measured.items():
            slowdown = median(hogged) / median(quiet)
            self.results.add(
                Row(
                    "6 contention",
                    f"chain fit, {label if label.startswith('in-') else 'worker with ' + label}: "
                    "quiet (baseline) vs one busy process beside it",
                    fmt_s(median(quiet)),
                    fmt_s(median(hogged)),
                    f"{fmt_x(slowdown)} slower",
                    "info",
                    None,
                )
            )
        self.details["contention"] = {
            k: {"quiet_s": q, "busy_s": h} for k, (q, h) in measured.items()
        }

    def start_variants(self) -> None:
        """Case 5 (rest): start-to-ready, and first fits on fresh workers with and without warm-up."""
        start = self.details["start"]
        self.results.add(
            Row(
                "5 start-up",
                "spawn → handshake answered / → warm-up done",
                "—",
                f"{fmt_s(start['handshake_s'])} / {fmt_s(start['warm_s'])}",
                "—",
                "report",
                None,
            )
        )
        self.case("5 fresh", "case 5: fresh worker, first fit sent right after the handshake")
        with self.worker() as fresh:
            spawn, _ = timed(fresh.start)
            first, _ = self.fit(fresh, self.data["chain"], seed=1, cache=False)
        self.results.add(
            Row(
                "5 start-up",
                "fresh worker: fit sent right after handshake (waits for warm-up)",
                fmt_s(self.warm_fit),
                f"{fmt_s(first)} (spawn→result {fmt_s(spawn + first)})",
                fmt_x(first / self.warm_fit),
                "info",
                None,
            )
        )
        progress("case 5: fresh worker with --no-warmup, first fit once DoWhy is imported")
        with self.worker("--no-warmup") as cold:
            cold.start()
            _wait_warm(cold)
            cold_first, _ = self.fit(cold, self.data["chain"], seed=1, cache=False)
        self.results.add(
            Row(
                "5 start-up",
                "--no-warmup worker: first fit once ready vs warm fit (what warm-up buys)",
                fmt_s(self.warm_fit),
                fmt_s(cold_first),
                fmt_x(cold_first / self.warm_fit),
                "info",
                None,
            )
        )
        self.details["start"].update(
            fresh_spawn_s=spawn, fresh_first_fit_s=first, no_warmup_first_fit_s=cold_first
        )

    def many_small_graphs(self) -> None:
        """Case 3: 40 small graphs, sequential in-process DoWhy vs WorkerPool(2).fit_many.

        The same pool with 2 threads per worker (a worker's default on 2 cores) runs only
        the first few graphs: it shows what oversubscription costs, which was once too much
        to run all 40 within the benchmark's time.
        """
        graphs = self.data["small"]
        cores = os.cpu_count() or 1
        self.case("3", f"case 3: {len(graphs)} small graphs, sequential in-process DoWhy")
        baseline = self.helper("sequential", "--seed-base", "1000", data="small")
        requests = [
            {
                "graph": g["graph"],
                "traces": g["traces"],
                "config": {**FIT_CONFIG, "seed": 1000 + i, "cache": False},
            }
            for i, g in enumerate(graphs)
        ]
        pools: dict[str, Any] = {}
        variants = [("budgeted", None, len(requests))]
        if cores > 1:
            variants.append(("oversubscribed", cores, self.args.oversubscribed_graphs))
        for label, threads, count in variants:
            with WorkerPool(
                2,
                python=self.python,
                threads=threads,
                worker_args=("--no-store",),
                start_timeout=600,
            ) as pool:
                self.case(
                    f"3 pool {label}",
                    f"case 3: WorkerPool(2) {label}, --threads {pool.threads} per worker, "
                    f"{count} graphs",
                )
                start_s, _ = timed(lambda pool=pool: _start_warm(pool.workers, pool.start))
                seconds, items = timed(
                    lambda pool=pool, count=count: pool.fit_many(requests[:count])
                )
                errors = [str(item.error) for item in items if not item.ok]
                r2 = [item.result.mean_r2 for item in items if item.ok and item.result is not None]
                pools[label] = {
                    "threads": pool.threads,
                    "graphs": count,
                    "seconds": seconds,
                    "start_s": start_s,
                    "errors": errors,
                    "per_graph_s": [
                        item.result.metadata.get("fitting_time_ms", 0) / 1000
                        for item in items
                        if item.result is not None
                    ],
                    "mean_r2": statistics.fmean(r for r in r2 if r is not None),
                }
                progress(f"  {label}: {fmt_s(seconds)} for {count} graphs ({len(errors)} errors)")
        per_graph = baseline["per_graph"]
        for label, pool in pools.items():
            count = pool["graphs"]
            base = baseline["seconds"] if count == len(graphs) else sum(per_graph[:count])
            ratio = base / pool["seconds"]
            budget = (
                f"2 processes × {pool['threads']} threads = {2 * pool['threads']} on {cores} cores"
            )
            targeted = label == "budgeted"
            subset = "" if count == len(graphs) else f", first {count} graphs only"
            self.results.add(
                Row(
                    "3 40 small graphs",
                    f"throughput, WorkerPool(2) {budget}{subset}"
                    + ("" if not pool["errors"] else f"; {len(pool['errors'])} errors"),
                    f"{count / base:.2f} graphs/s ({fmt_s(base)})",
                    f"{count / pool['seconds']:.2f} graphs/s ({fmt_s(pool['seconds'])})",
                    f"{fmt_x(ratio)}",
                    "≥ 1.7×" if targeted else "info (not a target)",
                    (ratio >= 1.7 and not pool["errors"]) if targeted else None,
                    ratio if targeted else None,
                    1.7 if targeted else None,
                    "higher",
                    "×",
                )
            )
        self.details["case3"] = {
            "sequential_dowhy_s": baseline["seconds"],
            "sequential_per_graph_s": per_graph,
            "sequential_mean_r2": statistics.fmean(r for r in baseline["mean_r2"] if r is not None),
            "pools": pools,
            "nodes": [len(g["graph"]["nodes"]) for g in graphs],
        }


def _wait_warm(worker: Worker) -> None:
    """Poll the handshake until the worker's warm-up (DoWhy import, joblib start) is done."""
    while not worker.call("initialize", {"client": "bench", "protocol_version": 1})["warm"]:
        time.sleep(0.01)


def _start_warm(workers: list[Worker], start: Callable[[], None]) -> None:
    """Start, then wait until every worker is warm: baselines are timed warm too."""
    start()
    for worker in workers:
        _wait_warm(worker)


def _without_cache_flag(raw: Any) -> Any:
    copy = json.loads(json.dumps(raw))
    copy.get("metadata", {}).pop("cache_hit", None)
    return copy


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


# -- output -------------------------------------------------------------------------

HEADER = ("case", "measure", "baseline", "scm-worker", "ratio", "target", "met?")


CASE_ORDER = ("1", "2", "3", "4", "5", "cache", "6")


def ordered(rows: list[Row]) -> list[Row]:
    """Rows by case (1–5, the cache, 6), in measurement order within a case."""
    return sorted(rows, key=lambda r: CASE_ORDER.index(r.case.split()[0]))


def table(rows: list[Row]) -> list[list[str]]:
    return [
        [
            r.case,
            r.measure,
            r.baseline,
            r.worker,
            r.ratio,
            r.target,
            "—" if r.met is None else ("yes" if r.met else "**NO**"),
        ]
        for r in rows
    ]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table(rows)
    ]
    return "\n".join(lines)


def text_table(rows: list[Row]) -> str:
    cells = [list(HEADER)] + [[c.replace("**", "") for c in row] for row in table(rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(
    bench: Bench, results: Results, command: str, elapsed: float, plotted: bool, out_dir: Path
) -> None:
    d = results.details
    info = d["worker_info"]
    targeted = [r for r in results.rows if r.met is not None]
    missed = [r for r in targeted if not r.met]
    c2, c3 = d["case2"], d["case3"]
    start = d["start"]
    quick = (
        " (QUICK smoke run: fewer repetitions, not the reference numbers)"
        if bench.args.quick
        else ""
    )
    lines = [
        "# scm-worker benchmarks",
        "",
        f"Generated by `benchmarks/run.py`{quick}; do not edit by hand, rerun `make bench`.",
        "",
        provenance.stamp(d["measured"]),
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, total run time {elapsed / 60:.1f} min",
        (
            f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, {platform.system()} {platform.release()}; "
            f"load average {d['load_average_start']} at start, {d['load_average_end']} at end (shared machine)"
        ),
        (
            f"- client: Python {platform.python_version()}; worker: Python {info['python_version']}, "
            f"DoWhy {info['dowhy_version']}, scm-worker {info['worker_version']}"
        ),
        (
            f"- command: `{command}` (`make bench` runs `.venv-client/bin/python benchmarks/run.py "
            "--worker-python .venv-worker/bin/python`)"
        ),
        (
            f"- data (benchmarks/datagen.py, checksums checked on both interpreters): chain X→Y→Z 1000 rows "
            f"`{d['checksums']['chain']}`; random DAG 100 nodes, p=0.05 ({c2['edges']} edges, "
            f"{c2['non_root_nodes']} non-root nodes), 1000 rows `{d['checksums']['dag']}`; 40 DAGs of 3–8 nodes, "
            f"500 rows `{d['checksums']['small']}`"
        ),
        "",
        f"**{len(targeted) - len(missed)} of {len(targeted)} targets met.**"
        + (
            " Missed: "
            + "; ".join(
                f"{r.case}: {r.measure.split(' (')[0]} ({r.ratio}, target {r.target})"
                for r in missed
            )
            + "."
            if missed
            else ""
        ),
        "",
        markdown_table(ordered(results.rows)),
        "",
        "![ratios against targets](results.png)"
        if plotted
        else "(plot not drawn: matplotlib failed, see stderr)",
        "",
        "## How each case is measured",
        "",
        "Times are wall-clock at the caller (`time.perf_counter`), medians unless stated. Baselines and worker",
        "calls alternate within the run, so both see the same machine load. Workers run with `--no-store`; timed",
        "fits pass `cache: false` (except where the cache is the subject) and `validate_r2: false`.",
        "",
        (
            f"1. **Process-per-call**: `benchmarks/process_per_call.py` (reads the request on stdin, imports DoWhy, "
            f"split + `assign_causal_mechanisms` GOOD + `fit` + held-out R² + refit, prints JSON, exits), "
            f"{len(d['case1']['process_per_call_s'])} runs, each followed by {bench.args.warm_per_ppc} fits of the same "
            f"request (seed 1) on the warm worker. Runs (s): process-per-call "
            f"{_list(d['case1']['process_per_call_s'])}; worker {_list(d['case1']['warm_worker_s'], 3)}."
        ),
        (
            f"2. **100-node DAG**: per seed ({', '.join(str(r['seed']) for r in c2['dowhy'])}), "
            "`benchmarks/inprocess.py dowhy-fit` (a warm process: one untimed fit first) runs DoWhy's pipeline — "
            "scm_worker's own split, `gcm.auto.assign_causal_mechanisms(quality=GOOD)` and `gcm.fit` on the training "
            "rows, scm_worker's held-out scoring, refit on all rows — then the worker fits the same request with the "
            "same seed. The worker computes the same stages differently: each non-root node's selection, fit on the "
            "training rows, held-out prediction and refit on all rows run as one task, node-parallel (one thread "
            "each), and a candidate model stops cross-validating once it provably cannot win (the choice and every "
            "completed score are `select_model`'s). "
            f"DoWhy runs (s): {_list([r['seconds'] for r in c2['dowhy']])} (of which assign "
            f"{_list([r['stages']['assign'] for r in c2['dowhy']])}); worker runs (s): "
            f"{_list([r['seconds'] for r in c2['worker']])}, `fitting_time_ms` "
            f"{', '.join(str(r['fitting_time_ms']) for r in c2['worker'])}. Median time by stage: DoWhy "
            f"{_stages([r['stages'] for r in c2['dowhy']])}; worker (from its progress notifications) "
            f"{_stages([r['stages'] for r in c2['worker']])}. Mean R² DoWhy "
            f"{_list([r['mean_r2'] for r in c2['dowhy']], 4)}, worker {_list([r['mean_r2'] for r in c2['worker']], 4)}. "
            "Share of the CPU other processes used during each run, DoWhy / worker: "
            + ", ".join(
                f"seed {d_['seed']} {_pct(d_.get('others_cpu'))} / {_pct(w_.get('others_cpu'))}"
                for d_, w_ in zip(c2["dowhy"], c2["worker"], strict=True)
            )
            + ". "
            f"Models chosen (seed {c2['dowhy'][0]['seed']}): DoWhy {d['case2_model_counts']['dowhy']}, worker "
            f"{d['case2_model_counts']['worker']}; same model on {d['case2_model_counts']['same_choice_nodes']} of 100 "
            "nodes (the worker keeps a linear model within 0.001 of the best cross-validated R²)."
        ),
        f"3. **40 small graphs**: `inprocess.py sequential` fits them one after another in one warm process "
        f"(DoWhy defaults: `n_jobs=-1`), {fmt_s(c3['sequential_dowhy_s'])}; `WorkerPool(2).fit_many` after "
        f"`pool.start()` and every worker's warm-up (not timed: "
        + ", ".join(f"{label} {fmt_s(p['start_s'])}" for label, p in c3["pools"].items())
        + f"; the oversubscribed pool fits only the first {c3['pools'].get('oversubscribed', {}).get('graphs')} "
        "graphs and is compared with the sequential time of those graphs"
        + "). Mean of the per-graph mean R²: DoWhy "
        f"{c3['sequential_mean_r2']:.4f}, "
        + ", ".join(f"pool {label} {p['mean_r2']:.4f}" for label, p in c3["pools"].items())
        + ". One run each.",
        (
            f"4. **Round trips**: {d['ping']['count']} `ping` calls after 50 untimed ones (mean "
            f"{d['ping']['mean_ms']:.3f} ms, max {d['ping']['max_ms']:.2f} ms); {len(d['sample']['worker_s'])} "
            "interventional samples do(X := 1), 1000 rows, samples returned; the baseline is "
            "`gcm.interventional_samples` in-process on the same model (it samples the model observationally, then "
            "redraws every node downstream of X; the worker draws each node once, from the same distribution). "
            "Median `sampling_time_ms` inside the worker: "
            f"{median(d['sample']['worker_sampling_time_ms']):.0f} ms. Protocol overhead: client wall time of a "
            "100-node fit minus the worker's own `fitting_time_ms` (JSON encoding of 100,000 values, the pipe, "
            "parsing and checking, the cache key hash, the reply)."
        ),
        (
            f"5. **Start-up**: spawn → handshake {fmt_s(start['handshake_s'])}, → warm-up done "
            f"{fmt_s(start['warm_s'])}; first fit of the chain once warm {fmt_s(bench.first_fit)}; RSS from "
            "`/proc/PID/status` (VmRSS now, VmHWM peak), for the worker alone and summed with its descendants "
            f"(joblib's loky processes): idle {_mem(d['memory_idle'])}; after the 100-node fits "
            f"{_mem(d['memory_after_dag'])}."
        ),
        (
            "6. **Contention** (info, no target): chain fits on the main worker (default threads), in-process "
            "DoWhy (`inprocess.py contention`, the same pipeline as case 2) and on a `--threads 1` worker, "
            "first on their own, then with one `while True: pass` process running; "
            "the slowdown shows how much a fit depends on the cores being free."
        ),
        "",
        "## Thread budget",
        "",
        f"This machine has {os.cpu_count()} cores. In-process DoWhy runs with its defaults (`n_jobs=-1`: model "
        "candidates in parallel joblib processes; BLAS/OpenMP default). A single worker without `--threads` "
        f"fits non-root nodes node-parallel (selection, fit, held-out prediction, refit) with `os.cpu_count()` = "
        f"{os.cpu_count()} joblib processes of one thread each. `WorkerPool(2)` gives each worker `cores // 2` threads: "
        + "; ".join(
            f"{label}: 2 processes × `--threads {p['threads']}` = {2 * p['threads']} threads, "
            f"{fmt_s(p['seconds'])} for {p['graphs']} graphs"
            for label, p in c3["pools"].items()
        )
        + ". The oversubscribed row (no target) shows what the budget guards against: 2 workers × 2 threads "
        "on 2 cores. Since each node's fit runs single-threaded in a joblib process, a `--threads 2` worker "
        f"means 2 busy single-thread processes; {_oversubscription(c3)} When the worker's own process fitted "
        "with every core's OpenMP threads, the oversubscribed pool took 27× the sequential time of its 8 graphs "
        "(174.0 s against 6.44 s, 0.04× the throughput: quoted from benchmarks/RESULTS.md at commit ada845e, "
        "not measured in this run). "
        "In-process DoWhy's `gcm.fit` and the worker's own process (assembling the model, sampling) use the "
        "BLAS/OpenMP default of one thread per core.",
        "",
        "## Machine load during the run",
        "",
        (
            "This machine is shared with other jobs. Before each case the driver waits (at most "
            f"{bench.args.max_wait:.0f} s per case, {bench.args.max_wait_total:.0f} s per run) while other "
            f"processes keep more than {bench.args.quiet_below:.0%} of the CPU busy. Other jobs may still "
            "start during a case, so below is, per case, the share of all cores that processes outside the "
            "benchmark used while it ran (from /proc/stat minus the CPU time of the benchmark's own process "
            "tree), the share busy just before it, and the load average (1, 5, 15 min). Fits slow down "
            "sharply when the cores are busy (case 6): a case that ran beside other jobs measured them too."
        ),
        "",
        *[
            f"- {name}: other processes used {_pct(v.get('others_during'))} of the CPU during the case; "
            f"{_pct(v['busy_before'])} busy just before it (waited {v['waited_s']:.0f} s); "
            f"load average then {v['load_average']}"
            for name, v in d.get("load_by_case", {}).items()
        ],
        "",
        "Raw numbers: `benchmarks/results.json`.",
        "",
    ]
    (out_dir / "RESULTS.md").write_text("\n".join(lines))


def _oversubscription(c3: dict[str, Any]) -> str:
    """What oversubscription cost in this run: throughput per graph, oversubscribed vs budgeted pool."""
    pools = c3["pools"]
    if "oversubscribed" not in pools:
        return "this run had one core, so no oversubscribed pool ran."
    over, budgeted = pools["oversubscribed"], pools["budgeted"]
    relative = (over["graphs"] / over["seconds"]) / (budgeted["graphs"] / budgeted["seconds"])
    base = sum(c3["sequential_per_graph_s"][: over["graphs"]])
    return (
        f"in this run the oversubscribed pool's throughput was {relative:.2f}× the budgeted pool's "
        f"({over['graphs'] / over['seconds']:.2f} against {budgeted['graphs'] / budgeted['seconds']:.2f} "
        f"graphs/s) and {fmt_x(base / over['seconds'])} the sequential throughput of the same graphs."
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _stages(runs: list[dict[str, float]]) -> str:
    names = list(runs[0]) if runs else []
    return ", ".join(f"{name} {median([r.get(name, 0.0) for r in runs]):.1f} s" for name in names)


def _list(values: list[float], digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def _mem(m: dict[str, float]) -> str:
    return (
        f"worker {m['rss']:.0f} MB RSS / {m['peak']:.0f} MB peak, with {m['children']} children "
        f"{m['rss_total']:.0f} MB / {m['peak_total']:.0f} MB"
    )


def default_worker_python() -> str:
    return os.environ.get("SCM_WORKER_PYTHON") or str(ROOT / ".venv-worker" / "bin" / "python")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--worker-python",
        default=default_worker_python(),
        help="the worker's interpreter (default: $SCM_WORKER_PYTHON, else .venv-worker/bin/python)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions: a smoke run of the whole suite"
    )
    parser.add_argument(
        "--no-reference-fit",
        dest="reference_fit",
        action="store_false",
        help="skip the in-process scm_worker fit_model reference run of case 2",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.25,
        help="before each case, wait while other processes keep more than this fraction of the "
        "CPU busy (default 0.25)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=120, help="longest wait for a quiet machine per case (s)"
    )
    parser.add_argument(
        "--max-wait-total", type=float, default=600, help="longest total wait per run (s)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=BENCH,
        help="where RESULTS.md, results.json and results.png go (default benchmarks/; "
        "a smoke run: --quick --out-dir /tmp/bench)",
    )
    args = parser.parse_args(argv)
    measured = provenance.measured_at()  # before measuring: the code these figures describe
    reps = {
        "ppc_runs": 5,
        "warm_per_ppc": 2,
        "pings": 2000,
        "samples": 50,
        "cache_hits": 5,
        "dag_runs": 3,
        "oversubscribed_graphs": 8,
        "contention_fits": 3,
    }
    if args.quick:
        reps = {
            "ppc_runs": 2,
            "warm_per_ppc": 2,
            "pings": 200,
            "samples": 10,
            "cache_hits": 2,
            "dag_runs": 1,
            "oversubscribed_graphs": 2,
            "contention_fits": 2,
        }
    for key, value in reps.items():
        setattr(args, key, value)
    if not Path(args.worker_python).exists():
        print(
            f"worker interpreter not found: {args.worker_python} (run `make venvs` or pass --worker-python)",
            file=sys.stderr,
        )
        return 1

    command = shlex.join(
        [
            os.path.relpath(sys.executable, ROOT)
            if sys.executable.startswith(str(ROOT))
            else sys.executable,
            "benchmarks/run.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    bench = Bench(args)
    bench.details["measured"] = measured
    progress(
        f"data checksums {bench.checksums}; worker python {args.worker_python}; load {load_average()}"
    )
    results = bench.run()
    elapsed = time.perf_counter() - T0

    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_json = args.out_dir / "results.json"
    results_json.write_text(
        json.dumps(
            {
                "rows": [asdict(r) for r in ordered(results.rows)],
                "details": results.details,
                "quick": args.quick,
            },
            indent=1,
        )
    )
    plot = subprocess.run(
        [args.worker_python, str(BENCH / "plot.py"), str(results_json), str(args.out_dir / "results.png")],
        check=False,
        cwd=ROOT,
    )
    write_results(bench, results, command, elapsed, plot.returncode == 0, args.out_dir)
    print(text_table(ordered(results.rows)))
    targeted = [r for r in results.rows if r.met is not None]
    print(
        f"\n{sum(bool(r.met) for r in targeted)} of {len(targeted)} targets met; "
        f"written to {os.path.relpath(args.out_dir / 'RESULTS.md')} in {elapsed / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
