"""FIT.md's quality table and plot: held-out R² of FAST against GOOD over issue 34's corpus.

The corpus: the benchmark's 100-node DAG with fit seeds 101, 102, 103, the 40 small graphs,
the fixtures (tests/fixtures, the same files as /work/shared/fixtures) and the non-linear
cases (datagen.NONLINEAR), the others with seed 101. Every graph is fitted by the worker at
GOOD (DoWhy's choice), FAST and BETTER (BETTER not on the DAG's later seeds: minutes each), on
the same split; a row gives both held-out mean R², their difference (target |Δ| ≤ 0.01 on
every graph: a seeded fit is deterministic, so one fit per quality is the measure) and the
worst node's loss. The plot sets each fit's time against its held-out mean R².
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
HEADER = ["| graph | nodes | GOOD mean R² | FAST mean R² | Δ (FAST − GOOD) | worst node loss | "
          "FAST time / GOOD time | verdict (\\|Δ\\| ≤ 0.01) |", "|---|---|---|---|---|---|---|---|"]


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


def fitted(worker: Worker, request: dict[str, Any], seed: int, quality: str) -> tuple[float, Any] | str:
    """(seconds, FitResult), or the error's name and message."""
    try:
        result = worker.fit(request["graph"], request["traces"], seed=seed, quality=quality,
                            cache=False, validate_r2=False)
    except RemoteError as error:
        return f"{type(error).__name__}: {error}"
    return result.metadata.get("fitting_time_ms", 0.0) / 1000, result


def table_row(ctx: Any, name: str, nodes: int, good: tuple[float, Any], fast: tuple[float, Any] | str) -> str:
    if isinstance(fast, str):
        return f"| {name} | {nodes} | {good[1].mean_r2:.4f} | — | — | — | — | not available |"
    (g_s, g), (f_s, f) = good, fast
    delta = f.mean_r2 - g.mean_r2
    loss, node = max((g.r2_scores[n] - f.r2_scores.get(n, 0.0), n) for n in g.r2_scores)
    verdict = ctx.verdict(abs(delta) <= 0.01)
    return (f"| {name} | {nodes} | {g.mean_r2:.4f} | {f.mean_r2:.4f} | {delta:+.4f} | {loss:+.4f} ({node}) "
            f"| {f_s / g_s:.2f}× | {verdict} |")


def measure(ctx: Any, side: DoWhySide, worker: Worker, log: Callable[[str], None]) -> tuple[list[str], str]:
    rows: list[str] = []
    missing: set[str] = set()
    points: dict[str, list[list[float]]] = {"GOOD": [], "BETTER": [], "FAST": []}
    for name, request, seed in corpus(ctx.quick):
        good = fitted(worker, request, seed, "GOOD")
        if isinstance(good, str):
            rows.append(f"| {name} | {len(request['graph']['nodes'])} | {good} | — | — | — | — | no fit |")
            continue
        fast = fitted(worker, request, seed, "FAST")
        missing |= {fast} if isinstance(fast, str) else set()
        later_seed = "DAG" in name and seed != 101
        better = "skipped" if later_seed else fitted(worker, request, seed, "BETTER")
        for label, found in (("GOOD", good), ("FAST", fast), ("BETTER", better)):
            if not isinstance(found, str) and found[1].mean_r2 is not None:
                points[label].append([max(found[0], 1e-3), found[1].mean_r2])
        rows.append(table_row(ctx, name, len(request["graph"]["nodes"]), good, fast))
        log(f"quality: {rows[-1]}")
    png = "fit.png"
    side.call("plot", points={k: v for k, v in points.items() if v}, path=str(ctx.out_dir / png),
              title="fit time against held-out mean R², the worker")
    why = [f"FAST not available: {reason}" for reason in sorted(missing)]
    return ["## Quality: FAST against GOOD", "", *HEADER, *rows, "", *why], png
