"""Case 5, start-up: start to ready, idle RSS, first fit once warm, fresh and pooled starts, peak RSS."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from common import Row, _wait_warm, fmt_s, fmt_x, progress, timed
from procstat import memory_mb
from scm_client import Worker

if TYPE_CHECKING:
    from bench import Bench


def startup(bench: Bench, main: Worker) -> None:
    """Case 5 (part): start-to-ready, idle RSS, first fit once warm."""
    bench.case("5 start", "case 5: starting the main worker (default threads, --no-store)")
    started = time.perf_counter()
    info = main.start()
    handshake = time.perf_counter() - started
    _wait_warm(main)
    warm = time.perf_counter() - started
    bench.details["worker_info"] = {
        k: info.get(k)
        for k in ("worker_version", "python_version", "dowhy_version", "threads", "pid")
    }
    bench.details["start"] = {"handshake_s": handshake, "warm_s": warm}
    time.sleep(0.5)
    bench.details["memory_idle"] = memory_mb(main.pid)  # type: ignore[arg-type]
    progress(
        f"  handshake after {handshake:.2f}s, warm after {warm:.2f}s; "
        f"idle RSS {bench.details['memory_idle']['rss_total']:.0f} MB with children"
    )
    bench.first_fit, result = bench.fit(main, bench.data["chain"], seed=1, cache=False)
    progress(f"  first fit after ready: {fmt_s(bench.first_fit)} (mean R² {result.mean_r2:.4f})")


def start_variants(bench: Bench) -> None:
    """Case 5 (rest): start-to-ready, and first fits on fresh workers with and without warm-up."""
    start = bench.details["start"]
    bench.results.add(
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
    bench.case("5 fresh", "case 5: fresh worker, first fit sent right after the handshake")
    with bench.worker() as fresh:
        spawn, _ = timed(fresh.start)
        first, _ = bench.fit(fresh, bench.data["chain"], seed=1, cache=False)
    bench.results.add(
        Row(
            "5 start-up",
            "fresh worker: fit sent right after handshake (waits for warm-up)",
            fmt_s(bench.warm_fit),
            f"{fmt_s(first)} (spawn→result {fmt_s(spawn + first)})",
            fmt_x(first / bench.warm_fit),
            "info",
            None,
        )
    )
    progress("case 5: fresh worker with --no-warmup, first fit once DoWhy is imported")
    with bench.worker("--no-warmup") as cold:
        cold.start()
        _wait_warm(cold)
        cold_first, _ = bench.fit(cold, bench.data["chain"], seed=1, cache=False)
    bench.results.add(
        Row(
            "5 start-up",
            "--no-warmup worker: first fit once ready vs warm fit (what warm-up buys)",
            fmt_s(bench.warm_fit),
            fmt_s(cold_first),
            fmt_x(cold_first / bench.warm_fit),
            "info",
            None,
        )
    )
    bench.details["start"].update(
        fresh_spawn_s=spawn, fresh_first_fit_s=first, no_warmup_first_fit_s=cold_first
    )


def memory_rows(bench: Bench, after: dict[str, float]) -> None:
    idle = bench.details["memory_idle"]
    bench.results.add(
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
    bench.results.add(
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
