"""Draw benchmarks/results.png from results.json. Run by the WORKER interpreter (matplotlib).

    python benchmarks/plot.py benchmarks/results.json benchmarks/results.png

Left: every targeted measure as "times better than its target" (≥ 1 means met), on a
log scale. Right: the wall times behind the main comparisons, baseline vs scm-worker.
"""

from __future__ import annotations

import json
import statistics
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MET, MISSED = "#2e7d32", "#c62828"
BASELINE, WORKER = "#9e9e9e", "#1565c0"


def margin(row: dict) -> float:
    """How many times better than the target the measure is (≥ 1: met)."""
    value, goal = row["value"], row["goal"]
    if row["better"] == "higher":
        return value / goal
    return goal / value if value > 0 else float("inf")


def draw_targets(ax: plt.Axes, rows: list[dict]) -> None:
    targeted = [r for r in rows if r["goal"] is not None and r["value"] is not None]
    labels = [
        textwrap.fill(f"{r['case']}: {r['measure'].split(' (')[0].split(';')[0]}", 42)
        for r in targeted
    ]
    margins = [min(max(margin(r), 1e-3), 1e3) for r in targeted]
    y = range(len(targeted))
    ax.barh(y, margins, color=[MET if r["met"] else MISSED for r in targeted])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    for i, r in enumerate(targeted):
        unit = r["unit"]
        text = f" {r['value']:.3g}{unit if unit != '×' else '×'} vs target {r['goal']:g}{unit}"
        ax.text(margins[i], i, text, va="center", fontsize=7)
    ax.set_xlabel("times better than the target (log; ≥ 1 = met)")
    ax.set_title("Targets: green met, red missed", fontsize=10)
    ax.set_xlim(min(margins + [0.5]) / 2, max(margins + [2]) * 30)


def draw_times(ax: plt.Axes, details: dict) -> None:
    c1, c2, c3 = details["case1"], details["case2"], details["case3"]
    pairs = [
        (
            "1 chain fit\nprocess-per-call vs warm",
            statistics.median(c1["process_per_call_s"]),
            statistics.median(c1["warm_worker_s"]),
        ),
        (
            "2 100-node DAG fit\nDoWhy vs worker",
            statistics.median(r["seconds"] for r in c2["dowhy"]),
            statistics.median(r["seconds"] for r in c2["worker"]),
        ),
    ]
    for label, pool in c3["pools"].items():
        count = pool["graphs"]
        base = (
            sum(c3["sequential_per_graph_s"][:count])
            if count < len(c3["nodes"])
            else c3["sequential_dowhy_s"]
        )
        pairs.append(
            (
                (
                    f"3 {count} small graphs: sequential\nvs WorkerPool(2) {label},\n"
                    f"{pool['threads']} thread(s) per worker"
                ),
                base,
                pool["seconds"],
            )
        )
    pairs += [
        (
            "cache: chain\nfit vs hit",
            details["cache"]["fit_s"],
            statistics.median(details["cache"]["hit_s"]),
        ),
        (
            "4 sample 1000 rows\nin-process vs worker",
            statistics.median(details["sample"]["inprocess_s"]),
            statistics.median(details["sample"]["worker_s"]),
        ),
    ]
    y = range(len(pairs))
    height = 0.38
    ax.barh(
        [i - height / 2 for i in y], [p[1] for p in pairs], height, color=BASELINE, label="baseline"
    )
    ax.barh(
        [i + height / 2 for i in y], [p[2] for p in pairs], height, color=WORKER, label="scm-worker"
    )
    for i, (_, base, worker) in enumerate(pairs):
        ax.text(base, i - height / 2, f" {_seconds(base)}", va="center", fontsize=7)
        ax.text(worker, i + height / 2, f" {_seconds(worker)}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_yticks(list(y), [p[0] for p in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("wall time, seconds (log; median)")
    ax.set_title("Times, side by side in one run", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    low = min(min(p[1], p[2]) for p in pairs)
    high = max(max(p[1], p[2]) for p in pairs)
    ax.set_xlim(low / 2, high * 20)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value >= 1 else f"{value * 1000:.3g} ms"


def main(argv: list[str]) -> int:
    source, target = Path(argv[1]), Path(argv[2])
    results = json.loads(source.read_text())
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1.1, 1]}
    )
    draw_targets(left, results["rows"])
    draw_times(right, results["details"])
    title = "scm-worker benchmarks" + (" (QUICK smoke run)" if results.get("quick") else "")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
