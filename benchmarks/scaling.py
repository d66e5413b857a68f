"""Fit time against rows and against nodes: the worker beside DoWhy in-process, plotted.

    .venv-client/bin/python benchmarks/scaling.py [--worker-python PY] [--quick]
        [--rows 1000 10000 100000] [--nodes 10 50 100 200]

The driver (CLIENT interpreter, 3.13) fits ``datagen.random_dag`` data of each size
through ``scm_client.Worker`` (wall time at the client, and the worker's own
``fitting_time_ms``) and, interleaved point by point, runs DoWhy's pipeline on the same
data in a fresh warm process of the worker interpreter (``scaling.py dowhy-fit``,
``inprocess.dowhy_pipeline``: split, ``assign_causal_mechanisms`` GOOD, ``gcm.fit``,
held-out scoring, refit on all rows; one untimed warm-up fit first). The rows sweep holds
the node count at ``--fixed-nodes`` (10); the nodes sweep holds the rows at
``--fixed-rows`` (1000); each graph has about 1.5 edges per node (edge probability
3 / (nodes − 1)). Defaults: rows 1k, 10k, 100k and nodes 10, 50, 100, 200, one run per
point, about 5 minutes on 2 idle cores; the issue's full range,
``--rows 1000 10000 100000 1000000 --nodes 10 50 100 200 500`` (SCALING.md), about 13
minutes (the million-row and 500-node points take most of it).
``--quick``: rows 1k, 3k; nodes 5, 10.

Writes ``--out`` (benchmarks/SCALING.md), and beside it scaling.json and scaling.png
(drawn by ``scaling.py plot`` under the worker interpreter, which has matplotlib). The
verdict compares growth: the slope of log(time) against log(size), worker vs DoWhy.
scaling.json is saved after every point; ``scaling.py report`` renders the Markdown
and the plot from it again, from a run stopped part way too (marked partial).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "client")]

import datagen
import provenance
from machine import cpu_model, load_average

T0 = time.perf_counter()
#: the worker's curve "grows no faster" when its log-log slope exceeds DoWhy's by at most this
SLOPE_TOLERANCE = 0.1
DATA_SEED, FIT_SEED = 5, 7


def progress(message: str) -> None:
    print(f"[scaling {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def request_for(rows: int, nodes: int) -> dict[str, Any]:
    """The benchmark's graph of that size: ~1.5 edges per node, every column numeric."""
    probability = min(1.0, 3.0 / max(nodes - 1, 1))
    return datagen.random_dag(nodes, probability, rows, DATA_SEED)


# -- worker-interpreter commands ----------------------------------------------------------


def cmd_dowhy_fit(args: argparse.Namespace) -> int:
    """DoWhy's pipeline on one size, in this (3.11) process, after a warm-up fit."""
    import inprocess
    from queries_inprocess import stop_children

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        inprocess.warm_up()
        request = request_for(args.fit_rows, args.fit_nodes)
        graph, frame = inprocess.load(request)
        run = inprocess.dowhy_pipeline(graph, frame, FIT_SEED)
    finally:
        stop_children()  # DoWhy's joblib processes: none outlives this helper
    run["checksum"] = datagen.checksum(request)
    Path(args.out).write_text(json.dumps(run))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(Path(args.json).read_text())
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, sweep in zip(axes, ("rows", "nodes"), strict=True):
        draw_sweep(ax, sweep, results["sweeps"][sweep], results["fixed"][sweep])
    title = "Fit time: scm-worker vs DoWhy in-process"
    fig.suptitle(title + (" (QUICK smoke run)" if results.get("quick") else ""), fontsize=12)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    return 0


def draw_sweep(ax: Any, sweep: str, points: list[dict[str, Any]], fixed: str) -> None:
    sizes = [p["size"] for p in points]
    curves = (
        ("dowhy_s", "DoWhy in-process", "#9e9e9e", "-"),
        ("worker_s", "worker, wall at the client", "#1565c0", "-"),
        ("fitting_s", "worker, fitting_time_ms", "#1565c0", "--"),
    )
    for key, label, color, style in curves:
        values = [p[key] for p in points]
        slope_text = f", slope {slope(sizes, values):.2f}" if len(points) > 1 else ""
        ax.plot(sizes, values, style, color=color, marker="o", label=label + slope_text)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{sweep} ({fixed})")
    ax.set_ylabel("seconds (log)")
    ax.set_title(f"against {sweep}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


# -- the driver (client interpreter) ----------------------------------------------------


def slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size): the growth exponent."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-6)) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def dowhy_point(python: str, rows: int, nodes: int, tmp: Path) -> dict[str, Any]:
    out = tmp / f"dowhy-{rows}x{nodes}.json"
    argv = [
        python,
        str(Path(__file__).resolve()),
        "dowhy-fit",
        "--fit-rows",
        str(rows),
        "--fit-nodes",
        str(nodes),
        "--out",
        str(out),
    ]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return dict(json.loads(out.read_text()))


def worker_point(worker: Any, request: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    fit = worker.fit(
        request["graph"], request["traces"], seed=FIT_SEED, validate_r2=False, cache=False
    )
    wall = time.perf_counter() - started
    return {
        "worker_s": wall,
        "fitting_s": fit.metadata["fitting_time_ms"] / 1000,
        "worker_r2": fit.validation["mean_r2"],
    }


def measure_point(
    args: argparse.Namespace, worker: Any, rows: int, nodes: int, index: int, tmp: Path
) -> dict[str, Any]:
    """One size, worker and DoWhy, the order alternating from point to point."""
    request = request_for(rows, nodes)
    point: dict[str, Any] = {"rows": rows, "nodes": nodes, "edges": len(request["graph"]["edges"])}
    for side in ("worker", "dowhy") if index % 2 == 0 else ("dowhy", "worker"):
        if side == "worker":
            point.update(worker_point(worker, request))
        else:
            point.update(dowhy_result(args, rows, nodes, request, tmp))
    progress(
        f"{rows} rows × {nodes} nodes: worker {point['worker_s']:.2f}s (fitting "
        f"{point['fitting_s']:.2f}s), DoWhy {point['dowhy_s']:.2f}s"
    )
    return point


def dowhy_result(
    args: argparse.Namespace, rows: int, nodes: int, request: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    run = dowhy_point(args.worker_python, rows, nodes, tmp)
    if run["checksum"] != datagen.checksum(request):
        raise RuntimeError(f"{rows}×{nodes}: the helper generated different data")
    return {"dowhy_s": run["seconds"], "dowhy_r2": run["mean_r2"]}


def run_sweeps(args: argparse.Namespace, results: dict[str, Any], data: Path) -> None:
    """Measure every point into ``results["sweeps"]``, saving ``data`` after each one, so
    a run stopped part way still leaves its points (``scaling.py report`` renders them)."""
    from scm_client import Worker

    tmp = Path(tempfile.mkdtemp(prefix="scm-scaling-"))
    plan = {
        "rows": [(rows, args.fixed_nodes) for rows in args.rows],
        "nodes": [(args.fixed_rows, nodes) for nodes in args.nodes],
    }
    results["planned"] = {sweep: [list(size) for size in sizes] for sweep, sizes in plan.items()}
    results["sweeps"] = sweeps = {"rows": [], "nodes": []}
    with Worker(args.worker_python, worker_args=("--no-store",), start_timeout=600) as worker:
        worker.wait_until_warm(600)
        index = 0
        for sweep, sizes in plan.items():
            for rows, nodes in sizes:
                point = measure_point(args, worker, rows, nodes, index, tmp)
                point["size"] = rows if sweep == "rows" else nodes
                sweeps[sweep].append(point)
                data.write_text(json.dumps(results, indent=1))
                index += 1


def verdicts(sweeps: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for sweep, points in sweeps.items():
        if len(points) < 2:
            continue
        sizes = [p["size"] for p in points]
        worker = slope(sizes, [p["worker_s"] for p in points])
        dowhy = slope(sizes, [p["dowhy_s"] for p in points])
        out[sweep] = {"worker": worker, "dowhy": dowhy, "met": worker <= dowhy + SLOPE_TOLERANCE}
    return out


def markdown(results: dict[str, Any], png: str) -> str:
    lines = [
        "# Fit time against rows and nodes: scm-worker vs DoWhy in-process",
        "",
        provenance.stamp(results["measured"]),
        "",
        f"- measured on {results['date']}" + (" (QUICK smoke run)" if results["quick"] else ""),
        f"- command: `{results['command']}`",
        (
            f"- machine: {results['cpu']}, {os.cpu_count()} cores; load average "
            f"{results['load_before']} before, {results.get('load_after', '(not reached)')} after"
        ),
        (
            "- data: `datagen.random_dag`, edge probability 3/(nodes − 1), seed "
            f"{DATA_SEED}; fit seed {FIT_SEED}, quality GOOD; one run per point, worker and "
            "DoWhy interleaved"
        ),
        (
            "- worker: `Worker.fit` wall at the client (binary columns on the wire, the "
            "client's default) and its `fitting_time_ms`; DoWhy: `inprocess.dowhy_pipeline` "
            "in a warm 3.11 process"
        ),
        (
            f"- growth: slope of log(seconds) on log(size); the worker's may exceed DoWhy's by "
            f"at most {SLOPE_TOLERANCE:g}"
        ),
        "",
        *missing_points(results),
        f"![fit time against rows and nodes]({png})",
        "",
        (
            "| sweep | rows | nodes | edges | worker wall | worker fitting | DoWhy | worker/DoWhy "
            "| R² worker / DoWhy |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sweep, points in results["sweeps"].items():
        for p in points:
            lines.append(
                f"| {sweep} | {p['rows']:,} | {p['nodes']} | {p['edges']} | "
                f"{p['worker_s']:.2f} s | {p['fitting_s']:.2f} s | {p['dowhy_s']:.2f} s | "
                f"{p['worker_s'] / p['dowhy_s']:.2f}× | "
                f"{p['worker_r2']:.3f} / {p['dowhy_r2']:.3f} |"
            )
    lines.append("")
    for sweep, v in results["verdicts"].items():
        state = "met" if v["met"] else "**MISSED**"
        lines.append(
            f"- against {sweep}: worker slope {v['worker']:.2f}, DoWhy slope {v['dowhy']:.2f}: "
            f"{state} (the worker's curve grows no faster than DoWhy's)"
        )
    return "\n".join(lines) + "\n"


def missing_points(results: dict[str, Any]) -> list[str]:
    """A partial run says which planned points it did not reach."""
    done = {(p["rows"], p["nodes"]) for points in results["sweeps"].values() for p in points}
    missing = [f"{rows:,} × {nodes}" for sizes in results.get("planned", {}).values()
               for rows, nodes in sizes if (rows, nodes) not in done]
    if not missing:
        return []
    return [f"**Partial run: not measured (rows × nodes): {', '.join(missing)}.**", ""]


def cmd_run(args: argparse.Namespace, argv: list[str] | None) -> int:
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "worker"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    results: dict[str, Any] = {
        "measured": provenance.measured_at(),  # before measuring: the code these figures describe
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["scaling.py", *(sys.argv[1:] if argv is None else argv)]),
        "cpu": cpu_model(),
        "quick": args.quick,
        "load_before": load_average(),
        "fixed": {"rows": f"{args.fixed_nodes} nodes", "nodes": f"{args.fixed_rows:,} rows"},
    }
    out = Path(args.out)
    data = out.with_name("scaling.json")
    run_sweeps(args, results, data)
    results["load_after"] = load_average()
    data.write_text(json.dumps(results, indent=1))
    return render(args, data)


def render(args: argparse.Namespace, data: Path) -> int:
    """SCALING.md and scaling.png from the results file, a partial one included."""
    results = json.loads(data.read_text())
    results["verdicts"] = verdicts(results["sweeps"])
    out, png = Path(args.out), data.with_name("scaling.png")
    plot = [args.worker_python, str(Path(__file__).resolve()), "plot", str(data), str(png)]
    subprocess.run(plot, check=True, cwd=ROOT)
    text = markdown(results, png.name)
    out.write_text(text, encoding="utf-8")
    print(text)
    progress(f"wrote {out}, {data.name}, {png.name}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", nargs="?", default="run", choices=("run", "report", "dowhy-fit", "plot")
    )
    parser.add_argument("json", nargs="?", help="plot: the results file")
    parser.add_argument("png", nargs="?", help="plot: the figure to write")
    parser.add_argument(
        "--worker-python",
        default=os.environ.get("SCM_WORKER_PYTHON")
        or str(ROOT / ".venv-worker" / "bin" / "python"),
    )
    parser.add_argument("--out", default=str(BENCH / "SCALING.md"))
    parser.add_argument("--quick", action="store_true", help="rows 1k, 3k; nodes 5, 10")
    parser.add_argument("--rows", type=int, nargs="+", default=None)
    parser.add_argument("--nodes", type=int, nargs="+", default=None)
    parser.add_argument("--fixed-nodes", type=int, default=10, help="nodes in the rows sweep")
    parser.add_argument("--fixed-rows", type=int, default=1000, help="rows in the nodes sweep")
    parser.add_argument("--fit-rows", type=int, help="dowhy-fit: rows")
    parser.add_argument("--fit-nodes", type=int, help="dowhy-fit: nodes")
    args = parser.parse_args(argv)
    args.rows = args.rows or ([1000, 3000] if args.quick else [1000, 10_000, 100_000])
    args.nodes = args.nodes or ([5, 10] if args.quick else [10, 50, 100, 200])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "dowhy-fit":
        return cmd_dowhy_fit(args)
    if args.command == "plot":
        return cmd_plot(args)
    if args.command == "report":  # re-render from scaling.json beside --out
        return render(args, Path(args.out).with_name("scaling.json"))
    return cmd_run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
