"""What a report shows, before anything is drawn: layers, positions, what each node says.

Pure Python and networkx: no matplotlib, no DoWhy (tests/worker/test_report_layout.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:
    from ...engine.fitting import FittedModel


# -- layout ----------------------------------------------------------------------------


def layers(nodes: Sequence[str], edges: Sequence[Sequence[str]]) -> list[list[str]]:
    """Topological generations: roots first, every node one layer after its deepest parent."""
    digraph = nx.DiGraph()
    digraph.add_nodes_from(nodes)
    digraph.add_edges_from((a, b) for a, b in edges)
    order = {node: i for i, node in enumerate(nodes)}
    return [sorted(layer, key=order.__getitem__) for layer in nx.topological_generations(digraph)]


def layered_layout(
    nodes: Sequence[str], edges: Sequence[Sequence[str]]
) -> dict[str, tuple[float, float]]:
    """Node → (x, y): x is the node's layer (0, 1, …); y spreads a layer's nodes 1 apart,
    centred on 0, first at the top. Within a layer, nodes whose parents sit higher come
    first (mean of the parents' y; ties keep the graph's node order), which keeps most
    edges from crossing."""
    parents: dict[str, list[str]] = {node: [] for node in nodes}
    for a, b in edges:
        parents[b].append(a)
    positions: dict[str, tuple[float, float]] = {}
    for depth, layer in enumerate(layers(nodes, edges)):
        if depth:
            layer = sorted(
                layer, key=lambda n: -sum(positions[p][1] for p in parents[n]) / len(parents[n])
            )
        for i, node in enumerate(layer):
            positions[node] = (float(depth), (len(layer) - 1) / 2 - i)
    return positions


# -- what each node says ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeView:
    name: str
    layer: int
    mechanism: str  # empirical, linear, nonlinear, classifier, ...
    model: str | None
    score_name: str | None  # "r2" | "accuracy" | None (roots)
    score: float | None
    status: str  # "root" | "pass" | "fail"

    def lines(self, threshold: float) -> list[str]:
        # A pipeline's name (PolynomialFeatures+LinearRegression) goes on one line per step.
        lines = [
            self.name,
            *mechanism_label(self.mechanism, self.model).replace("+", " +\n").split("\n"),
        ]
        if self.score_name is not None:
            label = "R²" if self.score_name == "r2" else "accuracy"
            text = f"{label} {score_text(self.score)}"
            lines.append(text + (f" < {threshold:g}" if self.status == "fail" else ""))
        return lines

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def mechanism_label(mechanism: str, model: str | None) -> str:
    if mechanism in ("empirical", "linear", "classifier"):
        return mechanism
    return model or mechanism


def chosen_by_text(mechanism: dict[str, Any]) -> str:
    """Who chose a model that is not DoWhy's own choice (the fit's ``chosen_by``); "" for
    DoWhy's."""
    chosen_by = mechanism.get("chosen_by")
    if chosen_by == "user":
        return "set by user"
    if chosen_by == "linear_tolerance":
        dowhy = (mechanism.get("override") or {}).get("dowhy_model", "?")
        return f"kept by linear_tolerance over DoWhy's {dowhy}"
    return ""


def score_text(score: float | None) -> str:
    """Held-out scores are shown with three decimals everywhere in a report."""
    return "—" if score is None else f"{score:.3f}"


def number_text(value: float) -> str:
    return f"{value:.3f}" if value == 0 or 0.001 <= abs(value) < 10_000 else f"{value:.3g}"


def node_views(model: FittedModel) -> list[NodeView]:
    summary = model.summary
    mechanisms = summary["scm"]["mechanisms"]
    validation = summary["validation"]
    threshold = model.config.r2_threshold
    depth = {
        node: i
        for i, layer in enumerate(layers(model.graph.nodes, model.graph.edges))
        for node in layer
    }
    views = []
    for node in model.graph.nodes:
        mechanism = mechanisms[node]
        if node in validation["r2_scores"]:
            score_name, score = "r2", validation["r2_scores"][node]
        elif node in validation["accuracy"]:
            score_name, score = "accuracy", validation["accuracy"][node]
        else:
            score_name, score = None, None
        if score_name is None:
            status = "root"
        else:
            status = "pass" if score is not None and score >= threshold else "fail"
        views.append(NodeView(node, depth[node], str(mechanism.get("type")), mechanism.get("model"),
                              score_name, score, status))
    return views


def edge_coefficients(model: FittedModel) -> dict[tuple[str, str], float]:
    """(parent, child) → coefficient, for linear mechanisms with one coefficient per parent."""
    found: dict[tuple[str, str], float] = {}
    for node, mechanism in model.summary["scm"]["mechanisms"].items():
        params = mechanism.get("params") or {}
        if mechanism.get("type") != "linear" or params.get("encoded_parents"):
            continue
        for parent, coefficient in zip(mechanism["parents"], params["coefficients"], strict=False):
            found[(parent, node)] = float(coefficient)
    return found



@dataclass(frozen=True)
class Draws:
    """The queried sample and the observational one drawn with the same seed (None when
    the query itself is observational)."""

    queried: dict[str, Any]
    observational: dict[str, Any] | None
    nodes: list[str]



def query_label(meta: dict[str, Any]) -> str:
    """do(X = 5), do(Y := Y + 1), …; "observational" for an observational query."""
    terms = []
    for item in meta.get("interventions") or []:
        node = item["node"]
        if item["type"] == "hard":
            terms.append(f"{node} = {item['value']}")
        elif item.get("transform") == "shift":
            terms.append(f"{node} := {node} + {item['param']}")
        else:
            terms.append(f"{node} := {node} × {item['param']}")
    if not terms:
        return "observational"
    label = f"do({', '.join(terms)})"
    return f"counterfactual {label}" if meta.get("kind") == "counterfactual" else label
