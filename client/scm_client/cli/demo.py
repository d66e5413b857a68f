"""`scm demo`: fit every request in a directory with one worker, sample each model, summarise.

For each ``*.json`` request (sorted by file name) the demo fits it with seed 42 and the
request's own config, prints the fit (or the worker's structured error: the fixtures
include data that must fail validation or has too few rows), draws an observational
sample, and for graphs whose non-root mechanisms are all linear also intervenes on the
first root, do(root = 5), comparing downstream means with what the fitted coefficients
predict. A summary table and the timings close the run.

Exit status: 0 when every request produced a result or a structured error from the
worker; 1 when the worker failed to start, crashed or timed out, or a file was unreadable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .. import _format
from ..errors import InsufficientData, RemoteError, ValidationFailed, WorkerError, WorkerStartError
from ..results import FitResult, SampleResult
from ..worker import Worker
from .common import InputError, Request, add_command, fit_request, load_request, open_worker
from .report import write_demo_report

SEED = 42
NUM_SAMPLES = 1000
DO_VALUE = 5
# Fixtures whose data is built to be refused; their errors are the expected outcome.
EXPECTED_ERRORS = {"noisy_data": "ValidationFailed", "insufficient_data": "InsufficientData"}


#: the fixture whose fitted model `scm demo` also draws as an HTML report, and where
REPORT_FIXTURE = "linear_chain"
REPORT_DIR = Path("reports")


@dataclass(frozen=True)
class Outcome:
    name: str
    outcome: str
    mean_r2: float | None = None
    fit_ms: float | None = None
    broken: bool = False  # no result and no structured error: the run fails


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "demo", run_command,
                         "fit every request in DIR with one worker and summarise")
    parser.add_argument("directory", nargs="?", default="tests/fixtures", metavar="DIR",
                        help="directory of *.json requests (default: tests/fixtures)")


def run_command(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of *.json requests "
                         f"(run from the project root, or pass DIR)")
    return run(directory, lambda: open_worker(args), sys.stdout)


def run(directory: Path, make_worker: Callable[[], Worker], out: TextIO = sys.stdout) -> int:
    files = sorted(directory.glob("*.json"))
    if not files:
        print(f"scm demo: no *.json requests in {directory}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    worker = make_worker()
    try:
        info = worker.start()
        worker.wait_until_warm()  # DoWhy loaded and joblib's pool up: fit times are warm times
        start_s = time.perf_counter() - started
        print(header(directory, len(files), info, start_s), file=out)
        outcomes = [fixture(worker, path, out) for path in files]
    except WorkerStartError as exc:
        print(f"scm demo: {_format.error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        worker.close()
    print(summary(outcomes, time.perf_counter() - started, start_s), file=out)
    return 1 if any(o.broken for o in outcomes) else 0


def header(directory: Path, count: int, info: Mapping[str, Any], start_s: float) -> str:
    return (f"scm demo: {count} requests from {directory}, fitted with seed {SEED}\n"
            f"worker pid {info.get('pid')} · scm-worker {info.get('worker_version')} · "
            f"Python {info.get('python_version')} · DoWhy {info.get('dowhy_version')} · "
            f"ready (started and warm) in {start_s:.2f} s")


def banner(name: str) -> str:
    return f"\n── {name} " + "─" * max(3, 68 - len(name))


# -- one request -----------------------------------------------------------------------


def fixture(worker: Worker, path: Path, out: TextIO) -> Outcome:
    try:
        request = load_request(path)
    except InputError as exc:
        print(banner(path.stem) + f"\nunreadable: {exc}", file=out)
        return Outcome(path.stem, "unreadable file", broken=True)
    name = request.name
    print(banner(name), file=out)
    graph = ("graph", graph_text(request))
    started = time.perf_counter()
    try:
        fit = fit_request(worker, request, {**request.config, "seed": SEED})
    except RemoteError as exc:
        return refused(name, exc, (time.perf_counter() - started) * 1000, graph, out)
    except WorkerStartError:
        raise
    except WorkerError as exc:
        print(_format.key_values([graph, ("outcome", f"worker failure: {exc}")]), file=out)
        return Outcome(name, f"crashed ({type(exc).__name__})", broken=True)
    fit_ms = (time.perf_counter() - started) * 1000
    show_fit(fit, fit_ms, graph, out)
    broken = not show_samples(worker, fit, out)
    if name == REPORT_FIXTURE:
        report = write_demo_report(worker, fit, REPORT_DIR, name=name)
        print(f"report      {report.resolve()}  (open it in a browser)", file=out)
    return Outcome(name, f"fitted ({fit.status})", fit.mean_r2, fit_ms, broken=broken)


def graph_text(request: Request) -> str:
    graph, traces = request.graph, request.traces
    edges = _format.graph_line(graph) if isinstance(graph, dict) else "?"
    rows = len(next(iter(traces.values()), [])) if isinstance(traces, dict) and traces else 0
    return f"{edges} ({rows} rows)"


def refused(name: str, exc: RemoteError, fit_ms: float, graph: tuple[str, str],
            out: TextIO) -> Outcome:
    """A structured error from the worker: shown as the request's outcome, not a crash."""
    kind = type(exc).__name__
    expected = EXPECTED_ERRORS.get(name) == kind
    note = " — expected for this data" if expected else ""
    print(_format.key_values([graph, ("outcome", f"{kind}{note}: {refusal_reason(exc)}"),
                              ("time", f"{fit_ms:.0f} ms round trip")]), file=out)
    if isinstance(exc, ValidationFailed) and exc.r2_scores:
        threshold = exc.threshold if exc.threshold is not None else 0.0
        rows = [[node, f"{score:.4f}", _format.mark(score >= threshold)]
                for node, score in exc.r2_scores.items()]
        print("\n" + _format.table(["node", "held-out R²", "pass"], rows), file=out)
    mean = exc.mean_r2 if isinstance(exc, ValidationFailed) else None
    label = f"{kind} ({'expected' if expected else 'unexpected'})"
    return Outcome(name, label, mean, fit_ms)


def refusal_reason(exc: RemoteError) -> str:
    if isinstance(exc, ValidationFailed):
        mean = _format.num(exc.mean_r2, 4)
        return (f"mean R² {mean} < threshold {exc.threshold}; "
                f"below threshold: {', '.join(exc.failed_nodes) or _format.NONE}")
    if isinstance(exc, InsufficientData):
        return f"{exc.num_samples} complete rows, at least {exc.min_samples} needed"
    return exc.message


def show_fit(fit: FitResult, fit_ms: float, graph: tuple[str, str], out: TextIO) -> None:
    worker_ms = fit.metadata.get("fitting_time_ms", "?")
    print(_format.key_values(width=10, pairs=[
        graph,
        ("outcome", f"fitted: {_format.status_text(fit.status)}"),
        ("validation", _format.validation_line(fit.validation)),
        ("time", f"{fit_ms:.0f} ms round trip ({worker_ms} ms fitting in the worker)"),
    ]), file=out)
    print("\n" + _format.node_table(fit), file=out)
    equations = _format.linear_equations(fit)
    extra = [("linear", "\n".join(equations))] if equations else []
    pairs = [*extra, ("warnings", _format.warnings_text(fit.warnings))]
    print("\n" + _format.key_values(pairs, width=10), file=out)


# -- samples ---------------------------------------------------------------------------


def show_samples(worker: Worker, fit: FitResult, out: TextIO) -> bool:
    """Observational sample, then do(root = 5) for linear graphs; False if the worker broke."""
    try:
        observed = worker.sample(fit, "observational", num_samples=NUM_SAMPLES, seed=SEED,
                                 return_samples=False)
        print(f"\nobservational sample: {NUM_SAMPLES} draws, seed {SEED}", file=out)
        print(_format.statistics_table(observed), file=out)
        root = intervention_root(fit, observed)
        if root is not None:
            show_intervention(worker, fit, observed, root, out)
    except RemoteError as exc:
        print(f"\nsampling refused: {type(exc).__name__}: {exc.message}", file=out)
    except WorkerError as exc:
        print(f"\nworker failure while sampling: {exc}", file=out)
        return False
    return True


def intervention_root(fit: FitResult, observed: SampleResult) -> str | None:
    """The first numeric root, if every non-root mechanism is linear in numeric parents."""
    mechanisms = fit.scm["mechanisms"]
    children = [m for m in mechanisms.values() if m.get("parents")]
    if not children or any(m.get("type") != "linear" or m["params"].get("encoded_parents")
                           for m in children):
        return None
    roots = [n for n in fit.scm["graph"]["nodes"] if not mechanisms[n].get("parents")]
    numeric = [n for n in roots if "mean" in observed.statistics.get(n, {})]
    return numeric[0] if numeric else None


def show_intervention(worker: Worker, fit: FitResult, observed: SampleResult, root: str,
                      out: TextIO) -> None:
    do = [{"type": "hard", "node": root, "value": DO_VALUE}]
    sample = worker.sample(fit, "interventional", do, num_samples=NUM_SAMPLES, seed=SEED,
                           return_samples=False)
    baseline = {n: s["mean"] for n, s in observed.statistics.items() if "mean" in s}
    predicted = linear_means(fit, {root: float(DO_VALUE)}, baseline)
    label = f"do({root} = {DO_VALUE})"
    rows = [[node, _format.num(baseline.get(node)),
             _format.num(sample.statistics[node].get("mean")), _format.num(predicted.get(node))]
            for node in descendants(fit.scm["graph"], root) if node in sample.statistics]
    print(f"\n{label}: interventional sample, {NUM_SAMPLES} draws — downstream means", file=out)
    print(_format.table(["node", "observational", label, "from coefficients"], rows), file=out)


def descendants(graph: Mapping[str, Any], root: str) -> list[str]:
    """Nodes reachable from ``root``, in the graph's node order."""
    children: dict[str, list[str]] = {}
    for parent, child in graph["edges"]:
        children.setdefault(parent, []).append(child)
    reached: set[str] = set()
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in reached:
                reached.add(child)
                frontier.append(child)
    return [n for n in graph["nodes"] if n in reached]


def linear_means(fit: FitResult, fixed: Mapping[str, float],
                 baseline: Mapping[str, float]) -> dict[str, float | None]:
    """E[node] from the linear equations: intercept + Σ coefficient·E[parent], roots at their
    mean."""
    mechanisms = fit.scm["mechanisms"]
    memo: dict[str, float | None] = dict(fixed)

    def mean_of(node: str) -> float | None:
        if node not in memo:
            mechanism = mechanisms[node]
            if mechanism.get("type") != "linear":
                memo[node] = baseline.get(node)
            else:
                parents = [mean_of(p) for p in mechanism["parents"]]
                params = mechanism["params"]
                terms = [c * p for c, p in zip(params["coefficients"], parents, strict=True)
                         if p is not None]
                complete = len(terms) == len(parents)
                memo[node] = params["intercept"] + sum(terms) if complete else None
        return memo[node]

    return {node: mean_of(node) for node in mechanisms}


# -- summary ---------------------------------------------------------------------------


def summary(outcomes: list[Outcome], wall_s: float, start_s: float) -> str:
    rows = [[o.name, o.outcome, _format.num(o.mean_r2, 4),
             _format.num(None if o.fit_ms is None else round(o.fit_ms))]
            for o in outcomes]
    timed = [o.fit_ms for o in outcomes if o.fit_ms is not None]
    mean_ms = statistics.mean(timed) if timed else 0.0
    median_ms = statistics.median(timed) if timed else 0.0
    broken = [o.name for o in outcomes if o.broken]
    verdict = (f"all {len(outcomes)} requests produced a result or a structured error" if not broken
               else f"no result and no structured error for: {', '.join(broken)}")
    return "\n".join([
        banner("summary"),
        _format.table(["fixture", "outcome", "mean R²", "fit ms"], rows),
        "",
        (f"total {wall_s:.2f} s wall time: worker start and warm-up {start_s:.2f} s, "
         f"{len(timed)} fits in {sum(timed) / 1000:.2f} s; per fit {mean_ms:.0f} ms mean, "
         f"{median_ms:.0f} ms median; the rest is sampling"),
        verdict,
    ])
