"""Suite wire → WIRE.md: protocol cost at scale, JSON lists against binary and attached columns.

A 20-node linear chain at 10,000, 100,000 and 1,000,000 rows. The table: for each size and
encoding (``json`` lists both ways, ``binary`` base64 blocks both ways, ``attached``: base64
traces in, the sample's columns as attached parts outside the reply's line, the client's
default) one fresh worker fits (cache off) and draws an observational sample of as many
rows with its values, twice (the second draw is shown: a fresh worker's first also pays for
touching new memory). Overhead is what the client waits beyond the worker's own compute:
``(wall − fitting_time_ms) / wall`` for a fit, ``(wall − sampling_time_ms) / wall`` for a
sample. The targets (≤ 5 % overhead: a 100,000-row fit with binary columns, a
1,000,000-row sample with attached columns) are judged on rounds, each call's compute time
its own pair: wall/compute ≤ 1/0.95.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rounds import TABLE, Target, fmt_s, row
from scm_client import Worker
from scm_client._wire import fit_params

TITLE = "Protocol cost at scale: JSON lists against binary and attached columns"
NODES = 20
READS = {"json": ["json"], "binary": ["json", "binary"], "attached": ["json", "binary", "attached"]}
OVERHEAD = Target(1 / 0.95)  # wall / compute: at most 5 % of the wall outside the worker's compute


def chain(rows: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """v00 → v01 → … → v19, each linear in its parent plus noise (quick to make at 1M rows)."""
    rng = random.Random(0)
    nodes = [f"v{i:02d}" for i in range(NODES)]
    columns = {nodes[0]: [rng.gauss(0.0, 1.0) for _ in range(rows)]}
    for parent, child in zip(nodes, nodes[1:], strict=False):
        columns[child] = [0.8 * value + rng.gauss(0.0, 0.6) for value in columns[parent]]
    edges = [[a, b] for a, b in zip(nodes, nodes[1:], strict=False)]
    return {"nodes": nodes, "edges": edges}, columns


def rss_mb(pid: int | None, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Wired:
    """A fresh worker reading ``encoding``, with the chain of ``rows`` fitted on it."""

    def __init__(self, python: str, encoding: str, rows: int) -> None:
        # a million rows of JSON lists exceed the default 256 MiB line limit: raised for all
        self.worker = Worker(python, request_timeout=3600,
                             worker_args=("--max-line-bytes", str(2**30)))
        self.worker.wait_until_warm(timeout=600)
        self.worker.call("initialize", {"column_encodings": READS[encoding]})
        self.start_rss = rss_mb(self.worker.pid, "VmRSS")
        self.graph, self.columns = chain(rows)
        self.binary, self.rows = encoding != "json", rows
        self.model = ""

    def __enter__(self) -> Wired:
        return self

    def __exit__(self, *_: object) -> None:
        self.worker.close()

    def fit(self, seed: int) -> tuple[float, float]:
        """(compute, wall) seconds of a fit, the client's encoding included in the wall."""
        started = time.perf_counter()
        config = {"seed": seed, "cache": False, "validate_r2": False}
        params = fit_params(self.graph, self.columns, config, binary=self.binary)
        fit = self.worker.call("fit", params)
        self.model = fit["model_id"]
        return fit["metadata"]["fitting_time_ms"] / 1000, time.perf_counter() - started

    def sample(self, seed: int) -> tuple[float, float]:
        started = time.perf_counter()
        sample = self.worker.sample(self.model, num_samples=self.rows, seed=seed)
        return sample.metadata["sampling_time_ms"] / 1000, time.perf_counter() - started


def table_row(python: str, encoding: str, rows: int) -> str:
    with Wired(python, encoding, rows) as wired:
        fitting, fit_wall = wired.fit(0)
        peak = rss_mb(wired.worker.pid, "VmHWM")
        wired.sample(1)
        sampling, sample_wall = wired.sample(2)
    return (f"| {rows:,} × {NODES} | {encoding} | {fmt_s(fit_wall)} | {fmt_s(fitting)} "
            f"| {(fit_wall - fitting) / fit_wall:.1%} | {wired.start_rss:.0f} → {peak:.0f} MB "
            f"| {rows * NODES * 8 / 2**20:.0f} MB | {fmt_s(sample_wall)} | {fmt_s(sampling)} "
            f"| {(sample_wall - sampling) / sample_wall:.1%} |")


def judged(ctx: Any, encoding: str, rows: int, what: str) -> str:
    with Wired(ctx.python, encoding, rows) as wired:
        wired.fit(0)
        pairs = [getattr(wired, what)(1 + i) for i in range(ctx.rounds)]
    return row(f"{rows:,} × {NODES} {what}, {encoding}: worker compute vs client wall "
               "(overhead ≤ 5 %)",
               [p[0] for p in pairs], [p[1] for p in pairs], OVERHEAD)


def run(ctx: Any, log: Callable[[str], None]) -> list[str]:
    sizes = (2_000, 20_000) if ctx.quick else (10_000, 100_000, 1_000_000)
    lines = [("| rows × nodes | encoding | fit wall | fitting | fit overhead "
              "| worker RSS start → peak | raw data | sample wall | sampling | sample overhead |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for rows in sizes:
        for encoding in READS:
            lines.append(table_row(ctx.python, encoding, rows))
            log(lines[-1])
    targets = [judged(ctx, "binary", sizes[1], "fit"), judged(ctx, "attached", sizes[-1], "sample")]
    return ["## Targets", "", *TABLE, *targets, "", "## Every size and encoding (one run each)",
            "", *lines, "", "Every worker is started with `--max-line-bytes 1073741824`: "
            "a million rows of JSON lists "
            "exceed the default 256 MiB line."]
