"""Every causal query through the worker beside DoWhy's own function, on the same fitted model.

    .venv-client/bin/python benchmarks/queries.py [--worker-python PY] [--quick]

Run by the CLIENT interpreter (Python 3.13, scm_client). One run times each query two
ways, interleaved call by call: through ``scm_client.Worker`` (a real 3.11 worker over
pipes, wall time at the client) and DoWhy's function in-process in the worker's
interpreter (``benchmarks/queries_inprocess.py``, a long-lived helper, time of the call
itself). The helper fits the same data with ``scm_worker.engine.fitting.fit_model`` and the same
seed, and the driver checks that the two fitted summaries agree, so both sides query
the same model. Each timed call on either side is preceded by seeding DoWhy's global RNG
with the same seed (repeat i uses seed base + i), the knobs are the worker's defaults,
and the answers are compared: identical seed for seed, or equal within the sampling
error across seeds (a mismatch is reported in the table, loudly).

The graph (``--graph``): ``dag`` (default), a random DAG from ``datagen.random_dag``;
``chain``, X → Y → Z as ``datagen.chain`` draws it. Every column is numeric and every
non-root node gets an additive-noise (invertible) mechanism, so every query applies.
The target is the node with the most ancestors; the intervened node is its first root
ancestor (defaults: 8 nodes, edge probability 0.4, 2000 fit rows; 9 timed calls per side
and query). ``--quick`` is a smoke run: 1000 rows, 3 calls, and smaller knobs
(``QUICK_KNOBS``) sent alike to both sides, so its ratios are not the targets'. On a
loaded machine DoWhy's joblib-parallel queries (arrow_strength, influence, anomaly)
slow down sharply; the full run can take tens of minutes: ``--queries`` picks a subset.
The table goes to stdout and ``--out`` (benchmarks/QUERIES.md); progress to stderr.
Speed is reported, never asserted: the exit status is 0 whether targets are met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "client")]

import datagen
import provenance
from common import add_worker_python
from machine import cpu_model, load_average
from scm_client import Worker

T0 = time.perf_counter()
Answer = dict[str, float | None]

#: query → (DoWhy's function, target ratio worker/DoWhy)
QUERIES: dict[str, tuple[str, float]] = {
    "effect": ("gcm.average_causal_effect", 0.5),
    "arrow_strength": ("gcm.arrow_strength", 1.0),
    "influence": ("gcm.intrinsic_causal_influence", 1.0),
    "anomaly": ("gcm.anomaly_scores + gcm.attribute_anomalies", 1.0),
    "distribution_change": ("gcm.distribution_change", 1.0),
    "sample_counterfactual": ("gcm.counterfactual_samples", 0.5),
    "sample_interventional": ("gcm.interventional_samples", 0.5),
    "sample_observational": ("gcm.draw_samples", 0.5),
}
#: the five questions with ``confidence`` (refit bootstrap) beside DoWhy's
#: ``gcm.confidence_intervals(gcm.fit_and_compute(f, …))`` with the same level and replicates
INTERVAL_QUESTIONS = ("effect", "arrow_strength", "influence", "anomaly", "distribution_change")
QUERIES.update({
    f"{question}_interval": (
        f"gcm.confidence_intervals(gcm.fit_and_compute({QUERIES[question][0]}))", 0.5
    )
    for question in INTERVAL_QUESTIONS
})
#: the interval rows' confidence level, on both sides
CONFIDENCE = 0.95
#: timed calls per side for queries whose calls take most of a minute here (influence: ~50 s
#: a call at the worker's defaults, Shapley values over 250 × 1000-row predictions), so the
#: whole run stays within about half an hour; the header names them
REPEATS_CAP: dict[str, int] = {
    "influence": 3,
    # a bootstrap is num_bootstrap refits and questions: a few timed calls each
    **{f"{question}_interval": 3 for question in INTERVAL_QUESTIONS},
    "influence_interval": 1,
}
#: --quick: smaller knobs, sent alike to the worker and to DoWhy (a smoke run, not the targets)
QUICK_KNOBS: dict[str, dict[str, int]] = {
    "effect": {"num_samples": 500},
    "arrow_strength": {"num_samples_conditional": 500},
    "influence": {
        "num_training_samples": 500,
        "num_samples_randomization": 20,
        "num_samples_baseline": 100,
    },
    "anomaly": {"num_distribution_samples": 500},
    "distribution_change": {"num_samples": 500},
    "sample": {"num_samples": 500},
}
#: answers further apart than this many standard errors (across seeds) are a mismatch
Z_LIMIT = 5.0
#: relative difference below which two numbers are the same number
SAME = 1e-9


def progress(message: str) -> None:
    print(f"[queries {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- the case: data, target, and every query's inputs ---------------------------------


def build_case(args: argparse.Namespace) -> dict[str, Any]:
    """Fit rows plus 1000 more from the same draw: observed/old rows, changed new rows."""
    total = args.rows + 1000
    if args.graph == "chain":
        request = datagen.chain(n_rows=total, seed=args.data_seed)
    else:
        request = datagen.random_dag(args.nodes, args.edge_probability, total, args.data_seed)
    nodes, edges = request["graph"]["nodes"], request["graph"]["edges"]
    target, source = pick_target(nodes, edges)
    columns = request["traces"]
    part = {
        "fit": {n: c[: args.rows] for n, c in columns.items()},
        "obs": {n: c[args.rows : args.rows + 500] for n, c in columns.items()},
        "new": {n: c[args.rows + 500 :] for n, c in columns.items()},
    }
    shift = {target: 0.5, source: 0.5}  # the new rows: two mechanisms changed
    new = {n: [v + shift.get(n, 0.0) for v in c] for n, c in part["new"].items()}
    jolt = {target: 3.0, source: 2.0}  # five anomalous rows
    anomalous = {n: [v + jolt.get(n, 0.0) for v in c[:5]] for n, c in part["obs"].items()}
    return {
        "graph": request["graph"],
        "traces": part["fit"],
        "config": {"seed": args.fit_seed, "validate_r2": False},
        "target": target,
        "source": source,
        "observed": part["obs"],
        "anomalous": anomalous,
        "old": part["obs"],
        "new": new,
        "knobs": QUICK_KNOBS if args.quick else {},
        "num_bootstrap": args.num_bootstrap,
    }


def pick_target(nodes: list[str], edges: list[list[str]]) -> tuple[str, str]:
    """The node with the most ancestors (the last such), and its first root ancestor."""
    parents: dict[str, set[str]] = {n: set() for n in nodes}
    for parent, child in edges:
        parents[child].add(parent)
    ancestors: dict[str, set[str]] = {}
    for node in nodes:  # datagen lists nodes in a topological order
        ancestors[node] = set().union(*([{p} | ancestors[p] for p in parents[node]] or [set()]))
    target = max(reversed(nodes), key=lambda n: len(ancestors[n]))
    roots = [n for n in nodes if n in ancestors[target] and not parents[n]]
    return target, roots[0]


# -- the two sides --------------------------------------------------------------------


class InProcess:
    """benchmarks/queries_inprocess.py under the worker interpreter, one command per line."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(BENCH / "queries_inprocess.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.info = self.receive()

    def call(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the in-process helper exited ({self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"in-process helper: {reply['error']}")
        return reply

    def run(self, query: str, seed: int) -> tuple[float, Answer]:
        reply = self.call({"op": "run", "query": query, "seed": seed})
        return reply["seconds"], reply["answer"]

    def close(self) -> None:
        try:
            self.call({"op": "quit"})
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=30)


class ThroughWorker:
    """The same queries through scm_client.Worker, timed at the client."""

    def __init__(self, worker: Worker, model: Any, case: dict[str, Any]) -> None:
        self.worker, self.model, self.case = worker, model, case
        self.target, self.source = case["target"], case["source"]

    def knobs(self, method: str) -> dict[str, int]:
        """Only the knobs the driver overrides; the worker fills in its defaults."""
        return dict(self.case["knobs"].get(method, {}))

    def run(self, query: str, seed: int) -> tuple[float, Answer]:
        question = query.removesuffix("_interval")
        started = time.perf_counter()
        answer = self.interval(question, seed) if question != query else getattr(self, query)(seed)
        return time.perf_counter() - started, answer

    def interval(self, question: str, seed: int) -> Answer:
        """The question with ``confidence`` (refit, the default): medians and bounds."""
        worker, model, target = self.worker, self.model, self.target
        options = {"seed": seed, "confidence": CONFIDENCE,
                   "num_bootstrap": self.case["num_bootstrap"], **self.knobs(question)}
        if question == "effect":
            result = worker.effect(model, target, self.hard(1.0), self.hard(0.0), **options)
            return interval_answer({"effect": result.effect}, {"effect": result.interval})
        if question == "anomaly":
            found = worker.anomaly(model, target, self.case["anomalous"], **options)
            return {
                **interval_answer(per_row("score", found.scores),
                                  per_row("score", found.score_intervals)),
                **interval_answer(per_row("attribution", found.attributions),
                                  per_row("attribution", found.intervals)),
            }
        if question == "distribution_change":
            options["measure"] = "mean"
            change = worker.distribution_change(
                model, target, self.case["old"], self.case["new"], **options)
            return interval_answer(change.values, change.intervals)
        attribution = getattr(worker, question)(model, target, **options)
        return interval_answer(attribution.values, attribution.intervals)

    def hard(self, value: float) -> list[dict[str, Any]]:
        return [{"type": "hard", "node": self.source, "value": value}]

    def effect(self, seed: int) -> Answer:
        alternative, reference = self.hard(1.0), self.hard(0.0)
        knobs = self.knobs("effect")
        result = self.worker.effect(
            self.model, self.target, alternative, reference, seed=seed, **knobs
        )
        return {"effect": result.effect}

    def arrow_strength(self, seed: int) -> Answer:
        knobs = self.knobs("arrow_strength")
        return dict(self.worker.arrow_strength(self.model, self.target, seed=seed, **knobs).values)

    def influence(self, seed: int) -> Answer:
        knobs = self.knobs("influence")
        return dict(self.worker.influence(self.model, self.target, seed=seed, **knobs).values)

    def anomaly(self, seed: int) -> Answer:
        rows, knobs = self.case["anomalous"], self.knobs("anomaly")
        result = self.worker.anomaly(self.model, self.target, rows, seed=seed, **knobs)
        return {**per_row("score", result.scores), **per_row("attribution", result.attributions)}

    def distribution_change(self, seed: int) -> Answer:
        old, new, knobs = self.case["old"], self.case["new"], self.knobs("distribution_change")
        result = self.worker.distribution_change(
            self.model, self.target, old, new, seed=seed, **knobs
        )
        return dict(result.values)

    def sample(self, kind: str, seed: int, **extra: Any) -> Answer:
        interventions = self.hard(1.0) if kind != "observational" else None
        knobs = self.knobs("sample")
        result = self.worker.sample(self.model, kind, interventions, seed=seed, **extra, **knobs)
        return sample_answer(result)

    def sample_counterfactual(self, seed: int) -> Answer:
        return self.sample("counterfactual", seed, observed=self.case["observed"])

    def sample_interventional(self, seed: int) -> Answer:
        return self.sample("interventional", seed)

    def sample_observational(self, seed: int) -> Answer:
        return self.sample("observational", seed)


def per_row(prefix: str, values: dict[str, list[float | None]]) -> Answer:
    return {
        f"{prefix}[{node}][{i}]": v for node, column in values.items() for i, v in enumerate(column)
    }


def interval_answer(values: dict[str, Any], intervals: Any) -> Answer:
    """``median[k]``, ``lo[k]``, ``hi[k]`` for each value ``k`` (the helper names DoWhy's alike)."""
    answer: Answer = {}
    for key, value in values.items():
        low, high = intervals[key]
        answer.update({f"median[{key}]": value, f"lo[{key}]": low, f"hi[{key}]": high})
    return answer


def sample_answer(result: Any) -> Answer:
    answer: Answer = {}
    for node, stats in result.statistics.items():
        answer[f"mean[{node}]"] = stats["mean"]
        answer[f"std[{node}]"] = stats["std"]
    return answer


# -- equal answers --------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    text: str


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= SAME * (1.0 + max(abs(a), abs(b)))


def compare_answers(worker: list[Answer], dowhy: list[Answer], ranked: bool) -> Verdict:
    """Identical seed for seed, or each value's mean across seeds within Z_LIMIT standard errors."""
    keys = sorted(dowhy[0])
    if any(sorted(a) != keys for a in worker + dowhy):
        return Verdict(False, f"MISMATCH: different components ({sorted(worker[0])} vs {keys})")
    if all(same(w[k], d[k]) for w, d in zip(worker, dowhy, strict=True) for k in keys):
        return Verdict(True, f"identical seed for seed ({len(keys)} values × {len(worker)} seeds)")
    if len(worker) < 2:
        return Verdict(False, "MISMATCH: not identical, and one seed gives no sampling error")
    worst, worst_key, means = 0.0, "", {}
    for key in keys:
        z, mw, md = z_score([w[key] for w in worker], [d[key] for d in dowhy])
        means[key] = (mw, md)
        if z > worst:
            worst, worst_key = z, key
    if worst > Z_LIMIT:
        mw, md = means[worst_key]
        return Verdict(
            False, f"MISMATCH: {worst_key} worker {mw:.4g} vs DoWhy {md:.4g} (z = {worst:.1f})"
        )
    if ranked and not same_ranking(worker, dowhy, keys):
        return Verdict(False, "MISMATCH: the attributions rank differently")
    return Verdict(
        True,
        f"equal within sampling error (max z = {worst:.1f} over {len(keys)} values, "
        f"{len(worker)} seeds)",
    )


def compare_intervals(worker: list[Answer], dowhy: list[Answer]) -> Verdict:
    """Interval rows: the two bootstraps draw different subsets (each side seeds its replicates
    its own way), so their answers are not equal: each value's interval must overlap DoWhy's."""
    keys = sorted(dowhy[0])
    if any(sorted(a) != keys for a in worker + dowhy):
        return Verdict(False, f"MISMATCH: different components ({sorted(worker[0])} vs {keys})")
    values = [k.removeprefix("median") for k in keys if k.startswith("median[")]
    for w, d in zip(worker, dowhy, strict=True):
        for value in values:
            low_w, high_w, low_d, high_d = (
                side[f"{end}{value}"] for side in (w, d) for end in ("lo", "hi"))
            if None in (low_w, high_w, low_d, high_d):
                return Verdict(False, f"MISMATCH: {value} has no interval")
            if max(low_w, low_d) > min(high_w, high_d):  # type: ignore[type-var]
                return Verdict(False, f"MISMATCH: {value} worker [{low_w:.4g}, {high_w:.4g}] vs "
                               f"DoWhy [{low_d:.4g}, {high_d:.4g}] do not overlap")
    return Verdict(True, f"intervals overlap ({len(values)} values × {len(worker)} seeds)")


def z_score(w: list[float | None], d: list[float | None]) -> tuple[float, float, float]:
    """|mean_w − mean_d| in standard errors of that difference (inf: differ with no spread)."""
    if any(v is None for v in w + d):
        return (0.0 if w == d else math.inf), math.nan, math.nan
    ws, ds = [float(v) for v in w if v is not None], [float(v) for v in d if v is not None]
    mw, md = statistics.fmean(ws), statistics.fmean(ds)
    se = math.sqrt(statistics.variance(ws) / len(ws) + statistics.variance(ds) / len(ds))
    if same(mw, md):
        return 0.0, mw, md
    return (abs(mw - md) / se if se > 0 else math.inf), mw, md


def same_ranking(worker: list[Answer], dowhy: list[Answer], keys: list[str]) -> bool:
    """Pairs DoWhy tells apart (means more than Z_LIMIT standard errors apart) keep their order."""

    def column(answers: list[Answer], key: str) -> list[float]:
        return [float(a[key] or 0.0) for a in answers]

    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            diff_d = [x - y for x, y in zip(column(dowhy, a), column(dowhy, b), strict=True)]
            diff_w = [x - y for x, y in zip(column(worker, a), column(worker, b), strict=True)]
            spread = statistics.stdev(diff_d) / math.sqrt(len(diff_d)) if len(diff_d) > 1 else 0.0
            md, mw = statistics.fmean(diff_d), statistics.fmean(diff_w)
            if abs(md) > Z_LIMIT * spread + SAME and md * mw < 0:
                return False
    return True


def compare_fits(worker: Any, mine: Any, path: str = "") -> list[str]:
    """Paths where the worker's fitted summary and the in-process fit's differ."""
    if isinstance(worker, dict) and isinstance(mine, dict):
        if sorted(worker) != sorted(mine):
            return [f"{path or '.'}: keys {sorted(worker)} vs {sorted(mine)}"]
        return [d for k in worker for d in compare_fits(worker[k], mine[k], f"{path}.{k}")]
    if isinstance(worker, list) and isinstance(mine, list):
        if len(worker) != len(mine):
            return [f"{path}: {len(worker)} vs {len(mine)} items"]
        return [
            d
            for i, (a, b) in enumerate(zip(worker, mine, strict=True))
            for d in compare_fits(a, b, f"{path}[{i}]")
        ]
    if isinstance(worker, float) or isinstance(mine, float):
        ok = (
            isinstance(worker, (int, float))
            and isinstance(mine, (int, float))
            and same(worker, mine)
        )
        return [] if ok else [f"{path}: {worker!r} vs {mine!r}"]
    return [] if worker == mine else [f"{path}: {worker!r} vs {mine!r}"]


# -- the run --------------------------------------------------------------------------


@dataclass
class Row:
    query: str
    dowhy_function: str
    goal: float
    worker_s: list[float] = field(default_factory=list)
    dowhy_s: list[float] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def ratio(self) -> float:
        return statistics.median(self.worker_s) / statistics.median(self.dowhy_s)

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal


def measure(query: str, sides: dict[str, Any], repeats: int, seed_base: int) -> Row:
    """Warm both sides, then ``repeats`` interleaved timed calls (alternating who goes first)."""
    function, goal = QUERIES[query]
    row = Row(query, function, goal)
    for side in sides.values():
        side.run(query, seed_base - 1)  # warm: untimed
    answers: dict[str, list[Answer]] = {"worker": [], "dowhy": []}
    for i in range(repeats):
        order = ["worker", "dowhy"] if i % 2 == 0 else ["dowhy", "worker"]
        for name in order:
            seconds, answer = sides[name].run(query, seed_base + i)
            (row.worker_s if name == "worker" else row.dowhy_s).append(seconds)
            answers[name].append(answer)
    ranked = query in ("arrow_strength", "influence", "distribution_change")
    row.verdict = (compare_intervals(answers["worker"], answers["dowhy"])
                   if query.endswith("_interval")
                   else compare_answers(answers["worker"], answers["dowhy"], ranked))
    progress(
        f"{query}: worker p50 {fmt_ms(statistics.median(row.worker_s))}, DoWhy p50 "
        f"{fmt_ms(statistics.median(row.dowhy_s))}, ratio {row.ratio:.2f}× (target ≤ {goal:g}×); "
        f"{row.verdict.text}"
    )
    return row


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def run(args: argparse.Namespace, record: dict[str, Any]) -> list[Row]:
    case = build_case(args)
    record["case"] = describe_case(args, case)
    progress(f"case: {record['case']}")
    helper = InProcess(args.worker_python)
    record["dowhy"] = helper.info["dowhy"]
    worker = Worker(args.worker_python, worker_args=("--no-store",), start_timeout=600)
    try:
        worker.start()
        worker.wait_until_warm(600)
        started = time.perf_counter()
        model = worker.fit(case["graph"], case["traces"], **case["config"])
        seconds, mean_r2 = time.perf_counter() - started, model.validation["mean_r2"]
        progress(f"worker fit {seconds:.2f}s, mean R² {mean_r2:.4f}")
        mine = helper.call({"op": "setup", "case": case})
        differences = [
            d
            for member in ("scm", "validation")
            for d in compare_fits(model.raw[member], mine["summary"][member], member)
        ]
        record["same_fit"] = not differences
        record["mechanisms"] = mechanism_counts(model.raw["scm"]["mechanisms"])
        record["fit_differences"] = differences[:5]
        progress(
            "fitted summaries: "
            + ("identical" if not differences else f"DIFFER: {differences[:3]}")
        )
        sides = {"worker": ThroughWorker(worker, model, case), "dowhy": helper}
        queries = args.queries or list(QUERIES)
        rows: list[Row] = []
        for query in queries:  # the document after every query: a stopped run keeps its rows
            repeats = min(args.repeats, REPEATS_CAP.get(query, args.repeats))
            rows.append(measure(query, sides, repeats, args.seed_base))
            record["load_after"] = load_average()
            write_markdown(args.out, rows, record, pending=queries[len(rows) :])
        return rows
    finally:
        worker.close()
        helper.close()


def mechanism_counts(mechanisms: dict[str, Any]) -> str:
    """Which models the fit chose, e.g. ``empirical ×3, LinearRegression ×2``."""
    names = [m.get("model", m["type"]) for m in mechanisms.values()]
    return ", ".join(f"{name} ×{names.count(name)}" for name in sorted(set(names)))


def describe_case(args: argparse.Namespace, case: dict[str, Any]) -> str:
    graph = case["graph"]
    shape = (
        "datagen.chain X → Y → Z"
        if args.graph == "chain"
        else f"datagen.random_dag({args.nodes} nodes, edge probability {args.edge_probability})"
    )
    return (
        f"{shape}, {len(graph['nodes'])} nodes, {len(graph['edges'])} edges, {args.rows} fit rows "
        f"(data seed {args.data_seed}, fit seed {args.fit_seed}); target {case['target']}, "
        f"interventions on {case['source']}; 500 observed/old rows, 500 new rows "
        f"({case['target']} and {case['source']} shifted by 0.5), 5 anomalous rows"
    )


# -- the record -----------------------------------------------------------------------


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| query | DoWhy's function | worker p50 | DoWhy p50 | worker/DoWhy | target | | answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        assert row.verdict is not None
        answers = row.verdict.text if row.verdict.ok else f"**{row.verdict.text}**"
        worker, dowhy = (fmt_ms(statistics.median(s)) for s in (row.worker_s, row.dowhy_s))
        lines.append(
            f"| `{row.query}` | `{row.dowhy_function}` | {worker} | {dowhy} | {row.ratio:.2f}× | "
            f"≤ {row.goal:g}× | {'met' if row.met else '**MISSED**'} | {answers} |"
        )
    return lines


def header(record: dict[str, Any]) -> list[str]:
    """What was measured, where, how: the lines above the table."""
    fit = (
        "identical (scm and validation members)"
        if record["same_fit"]
        else f"**DIFFER**: {record['fit_differences']}"
    )
    return [
        f"- measured on {record['date']}",
        f"- command: `{record['command']}`",
        (
            f"- machine: {record['cpu']}, {os.cpu_count()} cores; load average "
            f"{record['load_before']} before, {record['load_after']} after (shared machine: "
            "only ratios from this run compare)"
        ),
        (
            f"- DoWhy {record.get('dowhy', '?')}; {record['repeats']} timed calls per side and "
            "query, interleaved, after one untimed warm-up call each; p50 of each"
            + "".join(f" ({query}: {cap})" for query, cap in REPEATS_CAP.items()
                      if cap < record["repeats"])
        ),
        f"- case: {record['case']}",
        f"- worker's fit vs `scm_worker.engine.fitting.fit_model` in the helper: {fit}",
        f"- fitted mechanisms: {record['mechanisms']}",
        f"- knobs: {record['knobs']}",
        (
            "- worker: wall time of the `scm_client.Worker` call (pipes, JSON, checks included); "
            "DoWhy: the function call in a warm 3.11 process, on DataFrames it already holds; "
            "DoWhy's RNG seeded with the same seed on both sides"
        ),
        (
            "- the worker caps a query's OpenMP threads at the cores other runnable tasks leave "
            "free (worker/scm_worker/engine/contention.py); DoWhy in-process keeps the libraries' "
            "defaults. Idle, the two run alike; with another process on a core, DoWhy's boosted "
            "mechanisms stall at every tree's barrier and the ratios measure that too (see the "
            "load average above)"
        ),
        (
            "- answers: identical seed for seed, or every value's mean over the seeds within "
            f"{Z_LIMIT:g} standard errors (and, for attributions, the order of values DoWhy "
            "tells apart)"
        ),
        (
            f"- `*_interval` rows: confidence {CONFIDENCE:g}, {record['num_bootstrap']} replicates "
            "each refitting the model's mechanism types on 75 % of the fit rows, the worker's "
            "`confidence`/`refit: true` vs DoWhy's `confidence_intervals(fit_and_compute(…))` "
            "(its default `n_jobs=1`); answers: every value's interval overlaps DoWhy's, seed "
            "for seed (the replicates' subsets differ: each side derives them from the seed its "
            "own way)"
        ),
    ]


#: why ``distribution_change`` runs DoWhy's tests one after another, and where that should change
DISTRIBUTION_CHANGE_NOTE = """\
`distribution_change` runs DoWhy's own `gcm.distribution_change`, its kernel tests one after
another. Until issue 32 the worker recorded those tests, computed them two at a time in
joblib's processes and replayed DoWhy's random state (`kernel_tests.py`: 1.03× → 0.74× of
DoWhy's time when introduced, 0.69× at `a956354`); that replay was correct only as long as
DoWhy's per-task function drew in the order it copied, so it was removed. The parallelism
belongs upstream: DoWhy's `_check_significant_mechanism_change`
(`dowhy/gcm/distribution_change.py`) tests the target subgraph's nodes in a plain loop, and
`kernel_based` already draws its row subsets and task seed in the calling process. Proposed
for DoWhy: draw each node's seed up front, in node order, then run the per-node
`mechanism_change_test` calls in one `joblib.Parallel(n_jobs=config.default_n_jobs)`, each
seeded from its own draw: the p-values would not depend on the number of processes, and the
query would take about its longest test instead of their sum."""


def write_markdown(
    path: Path, rows: list[Row], record: dict[str, Any], pending: list[str] | None = None
) -> str:
    """The document; ``pending`` names the queries not measured yet (a run in progress)."""
    met = sum(row.met for row in rows)
    bad = [row.query for row in rows if row.verdict is not None and not row.verdict.ok]
    agree = f"**Answers differ: {', '.join(bad)}.**" if bad else "Answers agree on every query."
    lines = [
        "# Causal queries: through the worker vs DoWhy in-process",
        "",
        provenance.stamp(record["measured"]),
        "",
        *header(record),
        "",
        *table(rows),
        "",
        f"Targets met: {met}/{len(rows)}. {agree}",
        "",
    ]
    if pending:
        lines += [f"**Partial run: not measured yet: {', '.join(pending)}.**", ""]
    lines += [DISTRIBUTION_CHANGE_NOTE, ""]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_worker_python(parser)
    parser.add_argument("--out", type=Path, default=BENCH / "QUERIES.md")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 repeats, 1000 fit rows, smaller knobs (QUICK_KNOBS) on both sides",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per side and query (9; --quick: 3)"
    )
    parser.add_argument("--graph", choices=("dag", "chain"), default="dag")
    parser.add_argument("--nodes", type=int, default=8, help="dag: number of nodes")
    parser.add_argument("--edge-probability", type=float, default=0.4, help="dag: edge probability")
    parser.add_argument("--rows", type=int, default=None, help="fit rows (default 2000)")
    parser.add_argument("--num-bootstrap", type=int, default=20,
                        help="*_interval rows: replicates on both sides (DoWhy's default 20)")
    parser.add_argument("--data-seed", type=int, default=17)
    parser.add_argument("--fit-seed", type=int, default=3)
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument(
        "--queries", nargs="*", choices=sorted(QUERIES), help="a subset (default: all)"
    )
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 9)
    args.rows = args.rows or (1000 if args.quick else 2000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.worker_python).exists():
        print(f"worker interpreter not found: {args.worker_python}", file=sys.stderr)
        return 1
    # this checkout's worker first, for the worker process and the helper alike
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "worker"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    record: dict[str, Any] = {
        "measured": provenance.measured_at(),  # before measuring: the code these figures describe
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join([Path(sys.executable).name, *map(str, sys.argv)])
        if argv is None
        else shlex.join(["queries.py", *argv]),
        "cpu": cpu_model(),
        "load_before": load_average(),
        "repeats": args.repeats,
        "num_bootstrap": args.num_bootstrap,
        "knobs": (
            f"**QUICK smoke run**, smaller knobs on both sides: {json.dumps(QUICK_KNOBS)}"
            if args.quick
            else "the worker's defaults (declared in api/methods.py) on both sides"
        ),
    }
    rows = run(args, record)
    record["load_after"] = load_average()
    print(write_markdown(args.out, rows, record))
    progress(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
