"""Suite queries → QUERIES.md: every causal query through the worker against DoWhy's own function.

One seeded model: the worker fits the case, dowhy_side ``setup`` fits the same request with
``fit_model`` in the DoWhy process, and the two summaries must agree (the same model on
both sides). Each round calls the worker (wall time at the client: pipes, JSON, checks)
and DoWhy's function in-process (the call itself), back to back, the order alternating,
DoWhy's RNG seeded alike (round i: seed 500 + i), the knobs the worker's defaults on both
sides. The ``*_interval`` rows (formerly INTERVALS.md) are the question with ``confidence``
0.95 and 20 refit replicates against ``gcm.confidence_intervals(gcm.fit_and_compute(…))``
on the 3-node chain. Whether the answers agree is tested in tests/, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datagen
from dowhy_side import DoWhySide
from rounds import TABLE, Target, clock, paired, row
from scm_client import Worker

TITLE = "Causal queries: through the worker against DoWhy in-process"
#: query → (DoWhy's function, target worker/DoWhy)
QUERIES = {
    "effect": ("gcm.average_causal_effect", 0.5),
    "arrow_strength": ("gcm.arrow_strength", 1.0),
    "influence": ("gcm.intrinsic_causal_influence", 1.0),
    "anomaly": ("gcm.anomaly_scores + gcm.attribute_anomalies", 1.0),
    "distribution_change": ("gcm.distribution_change", 1.0),
    "sample_counterfactual": ("gcm.counterfactual_samples", 0.5),
    "sample_interventional": ("gcm.interventional_samples", 0.5),
    "sample_observational": ("gcm.draw_samples", 0.5),
}
#: with ``confidence``: target ≤ 0.5× DoWhy's bootstrap. influence and anomaly are left out
#: of the suite: 4 and 1.2 minutes a round pair here, past the hour a whole run may take
INTERVALS = ("effect", "arrow_strength", "distribution_change")
#: the slow calls (influence; the intervals, 20 refits each): a first call's extra cost is noise
LONG = {"influence", *(f"{question}_interval" for question in INTERVALS)}
QUICK_KNOBS: dict[str, dict[str, int]] = {
    "effect": {"num_samples": 500}, "arrow_strength": {"num_samples_conditional": 500},
    "influence": {"num_training_samples": 500, "num_samples_randomization": 20,
                  "num_samples_baseline": 100},
    "anomaly": {"num_distribution_samples": 500}, "distribution_change": {"num_samples": 500},
    "sample": {"num_samples": 500},
}


def build_case(request: dict[str, Any], rows: int, quick: bool,
               num_bootstrap: int) -> dict[str, Any]:
    """Fit rows, then 500 observed/old rows and 500 new rows (target and source shifted)."""
    nodes, edges = request["graph"]["nodes"], request["graph"]["edges"]
    parents = {n: {a for a, b in edges if b == n} for n in nodes}
    ancestors: dict[str, set[str]] = {}
    for node in nodes:  # datagen lists nodes in a topological order
        ancestors[node] = set().union(set(), *({p} | ancestors[p] for p in parents[node]))
    target = max(reversed(nodes), key=lambda n: len(ancestors[n]))  # the most ancestors
    source = next(n for n in nodes if n in ancestors[target] and not parents[n])
    cols = request["traces"]
    obs = {n: c[rows:rows + 500] for n, c in cols.items()}
    shift, jolt = {target: 0.5, source: 0.5}, {target: 3.0, source: 2.0}
    new = {n: [v + shift.get(n, 0.0) for v in c[rows + 500:]] for n, c in cols.items()}
    anomalous = {n: [v + jolt.get(n, 0.0) for v in c[:5]] for n, c in obs.items()}
    return {"graph": request["graph"], "traces": {n: c[:rows] for n, c in cols.items()},
            "config": {"seed": 3, "validate_r2": False}, "target": target, "source": source,
            "observed": obs, "anomalous": anomalous, "old": obs, "new": new,
            "knobs": QUICK_KNOBS if quick else {}, "num_bootstrap": num_bootstrap}


def ask(worker: Worker, model: Any, case: dict[str, Any], query: str, seed: int) -> Any:
    """The worker's call for ``query`` (``NAME_interval``: with confidence 0.95)."""
    question = query.removesuffix("_interval")
    knobs = dict(case["knobs"].get("sample" if question.startswith("sample") else question, {}))
    if question != query:
        knobs.update(confidence=0.95, num_bootstrap=case["num_bootstrap"])
    target, hard = case["target"], [{"type": "hard", "node": case["source"], "value": 1.0}]
    if question == "effect":
        zero = [{**hard[0], "value": 0.0}]
        return worker.effect(model, target, hard, zero, seed=seed, **knobs)
    if question in ("arrow_strength", "influence"):
        return getattr(worker, question)(model, target, seed=seed, **knobs)
    if question == "anomaly":
        return worker.anomaly(model, target, case["anomalous"], seed=seed, **knobs)
    if question == "distribution_change":
        return worker.distribution_change(model, target, case["old"], case["new"], seed=seed,
                                          measure="mean", **knobs)
    kind = question.removeprefix("sample_")
    extra = {"observed": case["observed"]} if kind == "counterfactual" else {}
    interventions = None if kind == "observational" else hard
    return worker.sample(model, kind, interventions, seed=seed, **knobs, **extra)


def measure(ctx: Any, case: dict[str, Any], queries: list[str],
            log: Callable[[str], None]) -> list[str]:
    """Each query on paired rounds, most after one untimed call per side (both warm)."""
    with DoWhySide(ctx.python) as side, ctx.worker() as worker:
        model = worker.fit(case["graph"], case["traces"], **case["config"])
        summary = side.call("setup", case=case)["summary"]
        same = all(summary[k] == model.raw[k] for k in ("scm", "validation"))
        lines = []
        for query in queries:
            if query not in LONG:  # one untimed call each: first-call costs out of the rounds
                ask(worker, model, case, query, 499)
                side.call("query", query=query, seed=499)
            times = paired(ctx.rounds, {
                "dowhy": lambda i, q=query: float(side.call("query", query=q,
                                                            seed=500 + i)["seconds"]),
                "worker": lambda i, q=query: clock(lambda: ask(worker, model, case, q, 500 + i))})
            base, bound = QUERIES[query.removesuffix("_interval")]
            if query.endswith("_interval"):  # DoWhy's bootstrap of the same function
                base, bound = f"gcm.confidence_intervals(gcm.fit_and_compute({base}))", 0.5
            lines.append(row(f"`{query}` vs `{base}`", times["dowhy"], times["worker"],
                             Target(bound)))
            log(lines[-1])
    nodes = case["graph"]["nodes"]
    return [f"Case: {len(nodes)} nodes, {len(case['graph']['edges'])} edges, "
            f"target {case['target']}, "
            f"interventions on {case['source']}; the worker's model and DoWhy's: "
            f"{'identical' if same else 'DIFFERENT (rows below compare different models)'}.", "",
            *TABLE, *lines]


def run(ctx: Any, log: Callable[[str], None]) -> list[str]:
    rows = 500 if ctx.quick else 2000
    dag = build_case(datagen.random_dag(8, 0.4, rows + 1000, 17), rows, ctx.quick, 20)
    chain = build_case(datagen.chain(rows + 1000, 17), rows, ctx.quick, 5 if ctx.quick else 20)
    queries = list(QUERIES)
    return ["## Queries (8-node DAG, 2000 fit rows)", "",
            *measure(ctx, dag, queries, log), "",
            f"## With confidence 0.95, {chain['num_bootstrap']} refit replicates (the chain X → Y → Z)",
            "",
            "`influence` and `anomaly` with confidence are not in the suite: a round pair takes "
            "about 4 and 1.2 minutes here.", "",
            *measure(ctx, chain, [f"{q}_interval" for q in INTERVALS], log)]
