"""Case 4, round trips: pings, interventional samples against in-process DoWhy, protocol overhead."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import ping_echo
from common import Row, fmt_s, fmt_x, percentile, timed
from scm_client import Worker

if TYPE_CHECKING:
    from bench import Bench


def round_trips(bench: Bench, main: Worker) -> None:
    """Case 4: ping and a 1000-row interventional sample."""
    count = bench.args.pings
    bench.case("4 ping", f"case 4: {count} pings")
    for _ in range(50):
        main.ping()
    pings = [timed(main.ping)[0] for _ in range(count)]
    p50, p99 = percentile(pings, 50), percentile(pings, 99)
    bench.details["ping"] = {
        "count": count,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "mean_ms": statistics.fmean(pings) * 1000,
        "max_ms": max(pings) * 1000,
    }
    bench.results.add(
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

    echo_rows(bench)

    repeats = bench.args.samples
    bench.case(
        "4 sample",
        f"case 4: {repeats} interventional samples of 1000 rows, in-process baseline first",
    )
    baseline = bench.helper("sample", "--seed", "5", "--repeats", str(repeats), data="chain")[
        "times"
    ]
    _, model = bench.fit(main, bench.data["chain"], seed=5, cache=False)
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
    bench.details["sample"] = {
        "worker_s": times,
        "worker_sampling_time_ms": inside,
        "inprocess_s": baseline,
    }
    bench.results.add(
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


def echo_rows(bench: Bench) -> None:
    """ping against a bare JSON echo on the same pipes, and Worker.ping against a raw call.

    ping_echo.py measures the three round trips interleaved call by call, from this process.
    """
    calls = bench.args.pings
    bench.case("4 ping vs echo", f"case 4: {calls} pings each: bare echo, raw worker, Worker.ping")
    p50 = ping_echo.measure(bench.python, calls)
    bench.details["ping_echo"] = {"calls": calls, "p50_ms": p50}
    raw, client = p50["raw"] / p50["echo"], p50["client"] / p50["raw"]
    bench.results.add(
        Row("4 round trips", f"worker ping, raw pipe, p50 ({calls} calls, interleaved)",
            f"{p50['echo']:.3f} ms (bare JSON echo, same pipes)", f"{p50['raw']:.3f} ms",
            fmt_x(raw), "≤ 2x the echo", raw <= 2.0, raw, 2.0, "lower", "x")
    )
    bench.results.add(
        Row("4 round trips", "Worker.ping through the client, p50",
            f"{p50['raw']:.3f} ms (raw pipe call)", f"{p50['client']:.3f} ms",
            fmt_x(client), "≤ 1.5x the raw call", client <= 1.5, client, 1.5, "lower", "x")
    )
