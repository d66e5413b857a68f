"""Protocol cost at scale: JSON lists against binary columns, side by side in one run.

For a 20-node chain at each row count, one fresh worker per encoding fits the same
traces (cache off) and draws the same observational sample with its values returned.
The encodings: ``json`` (lists both ways), ``binary`` (base64 blocks both ways) and
``attached`` (base64 traces in; the sample's columns as attached parts outside the
reply's line, sent while the statistics are computed: the client's default). Overhead
is what the client waits beyond the worker's own compute time: for a fit
``(wall − fitting_time_ms) / wall``, for a sample ``(wall − sampling_time_ms) / wall``,
where ``sampling_time_ms`` is the draw and its statistics, not the encoding of the
values returned.
The worker's peak RSS (VmHWM) is read after the fit and set against the raw float64
size of the traces.

    .venv-client/bin/python benchmarks/wire.py --worker-python .venv-worker/bin/python \
        [--rows 10000 100000 1000000] [--out benchmarks/WIRE.md]

Run from the checkout with the client importable (the client venv has it installed).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import provenance  # noqa: E402
from machine import cpu_model, load_average  # noqa: E402
from scm_client import Worker  # noqa: E402
from scm_client._wire import fit_params  # noqa: E402

NODES = 20
#: the 100,000-row fit must spend at most this share outside fitting (issue 17's target)
TARGET_OVERHEAD = 0.05


def chain_traces(rows: int, seed: int = 0) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """v00 → v01 → … → v19, each linear in its parent plus noise (fast to make at 1M rows)."""
    rng = random.Random(seed)
    nodes = [f"v{i:02d}" for i in range(NODES)]
    gauss = rng.gauss
    columns = {nodes[0]: [gauss(0.0, 1.0) for _ in range(rows)]}
    for parent, child in zip(nodes, nodes[1:]):
        columns[child] = [0.8 * value + gauss(0.0, 0.6) for value in columns[parent]]
    graph = {"nodes": nodes, "edges": [[a, b] for a, b in zip(nodes, nodes[1:])]}
    return graph, columns


@dataclass
class Run:
    encoding: str
    rows: int
    fit_wall_s: float
    fitting_s: float
    encode_s: float
    peak_rss_mb: float
    start_rss_mb: float
    sample_wall_s: float  # the second draw: the worker's first one pays first-touch costs
    sampling_s: float
    first_sample_wall_s: float
    first_sampling_s: float
    lists_s: float  # SampleResult.samples: the arrays made lists, after the reply

    @property
    def fit_overhead(self) -> float:
        return (self.fit_wall_s - self.fitting_s) / self.fit_wall_s

    @property
    def sample_overhead(self) -> float:
        return (self.sample_wall_s - self.sampling_s) / self.sample_wall_s


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: what the connection says it reads, per encoding (the client's own default is "attached")
READS = {"json": ["json"], "binary": ["json", "binary"], "attached": ["json", "binary", "attached"]}


def measure(worker_python: str, encoding: str, rows: int) -> Run:
    graph, columns = chain_traces(rows)
    binary = encoding != "json"
    # A million rows of JSON lists exceed the default 256 MiB line limit: raise it for all.
    with Worker(worker_python, request_timeout=3600, worker_args=("--max-line-bytes", str(2**30))) as worker:
        worker.wait_until_warm(timeout=600)
        worker.call("initialize", {"column_encodings": READS[encoding]})
        assert worker.pid is not None
        start_rss = rss_mb(worker.pid, "VmRSS")
        fit_started = time.perf_counter()
        params = fit_params(graph, columns, {"seed": 0, "cache": False, "validate_r2": False}, binary=binary)
        encoded = time.perf_counter()
        fit = worker.call("fit", params)
        fit_wall = time.perf_counter() - fit_started
        del params
        peak = rss_mb(worker.pid, "VmHWM")
        draws = []
        for seed in (1, 2):
            started = time.perf_counter()
            sample = worker.sample(fit["model_id"], num_samples=rows, seed=seed)
            draws.append((time.perf_counter() - started, sample.metadata["sampling_time_ms"] / 1000))
        started = time.perf_counter()
        assert sample.samples is not None and len(sample.samples[graph["nodes"][-1]]) == rows
        lists = time.perf_counter() - started
    return Run(encoding, rows, fit_wall, fit["metadata"]["fitting_time_ms"] / 1000, encoded - fit_started,
               peak, start_rss, *draws[1], *draws[0], lists)


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| rows × nodes | encoding | fit wall | fitting | fit overhead | client encode | worker RSS start → peak | "
        "raw data | sample wall | sampling | sample overhead | first sample: wall / sampling | `.samples` as lists |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        raw_mb = run.rows * NODES * 8 / 2**20
        lines.append(
            f"| {run.rows:,} × {NODES} | {run.encoding} | {run.fit_wall_s:.2f} s | {run.fitting_s:.2f} s | "
            f"**{run.fit_overhead:.1%}** | {run.encode_s:.2f} s | {run.start_rss_mb:.0f} → {run.peak_rss_mb:.0f} MB | "
            f"{raw_mb:.0f} MB | {run.sample_wall_s:.2f} s | {run.sampling_s:.2f} s | **{run.sample_overhead:.1%}** | "
            f"{run.first_sample_wall_s:.2f} s / {run.first_sampling_s:.2f} s | {run.lists_s:.2f} s |"
        )
    return lines


def verdicts(runs: list[Run]) -> list[str]:
    out = []
    by_key = {(r.encoding, r.rows): r for r in runs}
    for rows in sorted({r.rows for r in runs}):
        json_run, binary_run = by_key.get(("json", rows)), by_key.get(("binary", rows))
        attached_run = by_key.get(("attached", rows))
        if json_run and binary_run and attached_run:
            out.append(
                f"- {rows:,} rows: binary columns cut the fit's protocol time from "
                f"{json_run.fit_wall_s - json_run.fitting_s:.2f} s to {binary_run.fit_wall_s - binary_run.fitting_s:.2f} s; "
                f"the sample reply's is {json_run.sample_wall_s - json_run.sampling_s:.2f} s as JSON lists, "
                f"{binary_run.sample_wall_s - binary_run.sampling_s:.2f} s as base64 blocks, "
                f"{attached_run.sample_wall_s - attached_run.sampling_s:.2f} s attached."
            )
    target = by_key.get(("binary", 100_000))
    if target is not None:
        met = "met" if target.fit_overhead <= TARGET_OVERHEAD else "MISSED"
        out.append(f"- Target (≤ {TARGET_OVERHEAD:.0%} fit overhead at 100,000 × 20 with binary columns): "
                   f"{target.fit_overhead:.1%}, **{met}**.")
    big = by_key.get(("attached", 1_000_000))
    if big is not None:
        met = "met" if big.sample_overhead <= TARGET_OVERHEAD else "MISSED"
        out.append(f"- Big results (the same {TARGET_OVERHEAD:.0%} budget for a 1,000,000 × 20 sample with its "
                   f"values, attached columns): {big.sample_overhead:.1%}, **{met}**.")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-python", required=True)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=HERE / "WIRE.md")
    args = parser.parse_args(argv)
    measured = provenance.measured_at()  # before measuring: the code these figures describe
    runs = []
    for rows in args.rows:
        for encoding in READS:
            run = measure(args.worker_python, encoding, rows)
            print(json.dumps(run.__dict__ | {"fit_overhead": run.fit_overhead, "sample_overhead": run.sample_overhead}),
                  flush=True)
            runs.append(run)
    body = [
        "# Protocol cost at scale: JSON lists vs binary columns",
        "",
        provenance.stamp(measured),
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average {load_average()}; {cpu_model()}. Command: `benchmarks/wire.py` "
        f"(a 20-node linear chain, one fresh worker per encoding and size, "
        f"started with `--max-line-bytes 1073741824` since a million rows of JSON lists exceed the default "
        f"256 MiB line; fit with the cache off, then an observational sample of as many rows with its values "
        f"returned, twice: the table's sample columns are the second draw, since a fresh worker's first one "
        f"also pays for touching new memory. `sampling` is the worker's `sampling_time_ms`: the draw and its "
        f"statistics, not the encoding of the values. Sample wall time ends when `Worker.sample` returns, binary "
        f"and attached columns as `array('d')` (`SampleResult.columns`); the last column is the extra time "
        f"`SampleResult.samples` takes to make them lists). `binary` and `attached` send the same base64 traces: "
        f"their fits differ only by noise.",
        "",
        *table(runs),
        "",
        *verdicts(runs),
        "",
    ]
    args.out.write_text("\n".join(body), encoding="utf-8")
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
