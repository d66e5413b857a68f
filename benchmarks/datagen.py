"""Deterministic benchmark data, standard library only.

Both interpreters import this file (the 3.13 client driver and the 3.11 worker-side
helpers), so every case is fitted on exactly the same numbers on both sides of a
comparison; ``checksum`` lets the driver verify that.

Every generator returns wire-shaped requests: ``{"graph": {"nodes", "edges"},
"traces": {node: [floats]}}``. Child nodes mix linear and non-linear effects of their
parents (so DoWhy's model selection has real choices to make), plus Gaussian noise
worth about a fifth of the node's variance; every column is standardised.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

Request = dict[str, Any]

_EFFECTS = ("linear", "linear", "tanh", "sin", "square")


def chain(n_rows: int = 1000, seed: int = 0) -> Request:
    """X → Y → Z: Y linear in X, Z non-linear in Y."""
    rng = random.Random(seed)
    x = [rng.gauss(0.0, 1.0) for _ in range(n_rows)]
    y = [2.0 * xi + rng.gauss(0.0, 0.5) for xi in x]
    z = [3.0 * math.tanh(0.7 * yi) + rng.gauss(0.0, 0.3) for yi in y]
    return {
        "graph": {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]},
        "traces": {"X": _round(x), "Y": _round(y), "Z": _round(z)},
    }


def random_dag(
    n_nodes: int = 100, edge_probability: float = 0.05, n_rows: int = 1000, seed: int = 0
) -> Request:
    """Erdős–Rényi DAG: each pair i < j is an edge i → j with ``edge_probability``."""
    rng = random.Random(seed)
    nodes = [f"v{i:03d}" for i in range(n_nodes)]
    edges = [
        [nodes[i], nodes[j]]
        for j in range(n_nodes)
        for i in range(j)
        if rng.random() < edge_probability
    ]
    return {
        "graph": {"nodes": nodes, "edges": edges},
        "traces": _simulate(nodes, edges, n_rows, rng),
    }


def small_graphs(
    count: int = 40, min_nodes: int = 3, max_nodes: int = 8, n_rows: int = 500, seed: int = 0
) -> list[Request]:
    """Connected random DAGs: every node after the first has a parent, plus extra edges (p=0.3)."""
    rng = random.Random(seed)
    graphs = []
    for g in range(count):
        n = rng.randint(min_nodes, max_nodes)
        nodes = [f"g{g:02d}_{i}" for i in range(n)]
        edges = []
        for j in range(1, n):
            first = rng.randrange(j)
            edges.append([nodes[first], nodes[j]])
            edges += [[nodes[i], nodes[j]] for i in range(j) if i != first and rng.random() < 0.3]
        graphs.append(
            {
                "graph": {"nodes": nodes, "edges": edges},
                "traces": _simulate(nodes, edges, n_rows, rng),
            }
        )
    return graphs


#: the fit quality corpus's non-linear mechanisms of two parents A, B (issue 34)
NONLINEAR: dict[str, Any] = {
    "quadratic": lambda a, b: a * a + 0.5 * b,
    "product": lambda a, b: a * b,
    "threshold": lambda a, b: (2.0 if a > 0.3 else -1.0) + 0.5 * b,
    "interaction": lambda a, b: a + b + 1.5 * a * b,
}


def nonlinear(kind: str, n_rows: int = 1000, seed: int = 0) -> Request:
    """A, B → Y by one of ``NONLINEAR``'s mechanisms plus noise; Y → Z linear."""
    rng = random.Random(seed)
    a = [rng.gauss(0.0, 1.0) for _ in range(n_rows)]
    b = [rng.gauss(0.0, 1.0) for _ in range(n_rows)]
    signal = [NONLINEAR[kind](x, w) for x, w in zip(a, b, strict=True)]
    y = _standardise([s + rng.gauss(0.0, 0.5 * (_std(signal) or 1.0)) for s in signal])
    z = [0.8 * v + rng.gauss(0.0, 0.6) for v in y]
    return {"graph": {"nodes": ["A", "B", "Y", "Z"], "edges": [["A", "Y"], ["B", "Y"], ["Y", "Z"]]},
            "traces": {"A": _round(a), "B": _round(b), "Y": _round(y), "Z": _round(z)}}


def _simulate(
    nodes: list[str], edges: list[list[str]], n_rows: int, rng: random.Random
) -> dict[str, list[float]]:
    parents: dict[str, list[str]] = {node: [] for node in nodes}
    for parent, child in edges:
        parents[child].append(parent)
    columns: dict[str, list[float]] = {}
    for node in nodes:  # nodes are listed in a topological order
        if not parents[node]:
            values = [rng.gauss(0.0, 1.0) for _ in range(n_rows)]
        else:
            signal = [0.0] * n_rows
            for parent in parents[node]:
                weight = rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5)
                effect = rng.choice(_EFFECTS)
                column = columns[parent]
                for r in range(n_rows):
                    signal[r] += weight * _apply(effect, column[r])
            noise_sd = 0.5 * (_std(signal) or 1.0)  # R² of the true mechanism ≈ 0.8
            values = [s + rng.gauss(0.0, noise_sd) for s in signal]
        columns[node] = _standardise(values)
    return {node: _round(columns[node]) for node in nodes}


def _apply(effect: str, x: float) -> float:
    if effect == "tanh":
        return 2.0 * math.tanh(1.5 * x)
    if effect == "sin":
        return 2.0 * math.sin(2.0 * x)
    if effect == "square":
        return x * x - 1.0
    return x


def _std(values: list[float]) -> float:
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def _standardise(values: list[float]) -> list[float]:
    mean = math.fsum(values) / len(values)
    sd = _std(values) or 1.0
    return [(v - mean) / sd for v in values]


def _round(values: list[float]) -> list[float]:
    """Ten significant digits: the exact same floats after a JSON round trip on both sides."""
    return [float(f"{v:.10g}") for v in values]


def checksum(requests: Request | list[Request]) -> str:
    canonical = json.dumps(requests, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# The benchmark's data, shared by every script (change a parameter here, not per script).
CHAIN = {"n_rows": 1000, "seed": 11}
DAG = {"n_nodes": 100, "edge_probability": 0.05, "n_rows": 1000, "seed": 22}
SMALL = {"count": 40, "min_nodes": 3, "max_nodes": 8, "n_rows": 500, "seed": 33}


def case_data(name: str) -> Any:
    if name == "chain":
        return chain(**CHAIN)
    if name == "dag":
        return random_dag(**DAG)
    if name == "small":
        return small_graphs(**SMALL)
    raise ValueError(f"unknown data set {name!r}")
