"""FIT.md's quality table and plot: held-out R² of FAST against GOOD over issue 34's corpus.

The corpus: the benchmark's 100-node DAG with fit seeds 101, 102, 103, the 40 small graphs,
the fixtures (tests/fixtures, the same files as /work/shared/fixtures) and the non-linear
cases (datagen.NONLINEAR), the others with seed 101. Every graph is fitted by the worker at
GOOD (DoWhy's choice), FAST and BETTER (BETTER not on the DAG's later seeds: minutes each), on
the same split; a row gives both held-out mean R², their difference (target: FAST's mean no more than
0.01 below GOOD's on every graph — a FAST fit better than GOOD's is no loss; a seeded fit is
deterministic, so one fit per quality is the measure) and the worst node's loss. The plot sets each fit's time against its held-out mean R².
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datagen
from dowhy_side import DoWhySide
from scm_client import Worker
from scm_client.errors import RemoteError

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
HEADER = [("| graph | nodes | GOOD mean R² | FAST mean R² | Δ (FAST − GOOD) | worst node loss "
           "| FAST time / GOOD time | verdict (Δ ≥ −0.01) |"),
          "|---|---|---|---|---|---|---|---|"]
Fitted = tuple[float, Any] | str


def corpus(quick: bool) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(name, request, fit seed): the DAG once per seed, every other graph with seed 101."""
    dag = datagen.random_dag(8, 0.3, 300, 22) if quick else datagen.case_data("dag")
    for seed in (101,) if quick else (101, 102, 103):
        yield f"{len(dag['graph']['nodes'])}-node DAG, seed {seed}", dag, seed
    smalls = datagen.small_graphs(4, 3, 5, 300, 33) if quick else datagen.case_data("small")
    for index, graph in enumerate(smalls):
        yield f"small graph {index}", graph, 101
    for path in sorted(FIXTURES.glob("*.json")):
        yield f"fixture {path.stem}", json.loads(path.read_text()), 101
    for kind in datagen.NONLINEAR:
        yield f"non-linear {kind}", datagen.nonlinear(kind, 300 if quick else 1000, 5), 101


def fitted(worker: Worker, request: dict[str, Any], seed: int, quality: str) -> Fitted:
    """(seconds, FitResult), or the error's name and message."""
    try:
        result = worker.fit(request["graph"], request["traces"], seed=seed, quality=quality,
                            cache=False, validate_r2=False)
    except RemoteError as error:
        return f"{type(error).__name__}: {error}"
    return result.metadata.get("fitting_time_ms", 0.0) / 1000, result


def table_row(ctx: Any, name: str, nodes: int, good: tuple[float, Any], fast: Fitted) -> str:
    if isinstance(fast, str):
        return f"| {name} | {nodes} | {good[1].mean_r2:.4f} | — | — | — | — | not available |"
    (g_s, g), (f_s, f) = good, fast
    delta = f.mean_r2 - g.mean_r2
    losses = [(r2 - (f.r2_scores.get(n) or 0.0), n)
              for n, r2 in g.r2_scores.items() if r2 is not None]
    loss, node = max(losses, default=(0.0, "—"))
    return (f"| {name} | {nodes} | {g.mean_r2:.4f} | {f.mean_r2:.4f} | {delta:+.4f} "
            f"| {loss:+.4f} ({node}) | {f_s / g_s:.2f}× | {ctx.verdict(delta >= -0.01)} |")


def one_graph(ctx: Any, worker: Worker, name: str, request: dict[str, Any], seed: int,
              points: dict[str, list[list[float]]]) -> tuple[str, str | None]:
    """The graph's table row (GOOD, FAST) and why FAST was not available; BETTER is plotted."""
    nodes = len(request["graph"]["nodes"])
    good = fitted(worker, request, seed, "GOOD")
    if isinstance(good, str):
        return f"| {name} | {nodes} | {good} | — | — | — | — | no fit |", None
    fast = fitted(worker, request, seed, "FAST")
    later_seed = "DAG" in name and seed != 101  # BETTER on the DAG once: minutes a fit
    better = "skipped" if later_seed else fitted(worker, request, seed, "BETTER")
    for label, found in (("GOOD", good), ("FAST", fast), ("BETTER", better)):
        if not isinstance(found, str) and found[1].mean_r2 is not None:
            points[label].append([max(found[0], 1e-3), found[1].mean_r2])
    return table_row(ctx, name, nodes, good, fast), fast if isinstance(fast, str) else None


def measure(ctx: Any, side: DoWhySide, worker: Worker,
            log: Callable[[str], None]) -> tuple[list[str], str]:
    """The quality table's lines and the plot's file name (beside the document)."""
    rows, missing = [], set()
    points: dict[str, list[list[float]]] = {"GOOD": [], "BETTER": [], "FAST": []}
    for name, request, seed in corpus(ctx.quick):
        line, why = one_graph(ctx, worker, name, request, seed, points)
        rows.append(line)
        missing |= {why} if why else set()
        log(f"quality: {line}")
    side.call("plot", points={k: v for k, v in points.items() if v},
              path=str(ctx.out_dir / "fit.png"), title="fit time against held-out mean R², the worker")
    notes = [f"FAST not available: {reason}" for reason in sorted(missing)]
    return ["## Quality: FAST against GOOD", "", *HEADER, *rows, "", *notes], "fit.png"
