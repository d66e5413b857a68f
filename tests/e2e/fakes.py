"""Minimal stand-ins for a networkx DiGraph and a pandas DataFrame, for the stdlib-only client env.

Each has only the members lift-sys's DoWhy client (and so scm_client.compat) touches:
a DiGraph's ``nodes``, ``edges``, ``predecessors`` and ``is_directed``; a DataFrame's
``columns``, ``df[col].tolist()`` and ``len(df)``. Nothing more, so a test passing with
these does not lean on behaviour the real classes lack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class FakeDiGraph:
    """``nx.DiGraph(edges)`` plus ``add_node``: nodes in first-seen order, edges as pairs."""

    def __init__(self, edges: Iterable[Sequence[str]] = (), nodes: Iterable[str] = ()) -> None:
        self._nodes: dict[str, None] = dict.fromkeys(nodes)
        self._edges: list[tuple[str, str]] = []
        for parent, child in edges:
            self.add_edge(parent, child)

    def add_node(self, node: str) -> None:
        self._nodes.setdefault(node, None)

    def add_edge(self, parent: str, child: str) -> None:
        self.add_node(parent)
        self.add_node(child)
        if (parent, child) not in self._edges:
            self._edges.append((parent, child))

    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return list(self._edges)

    def predecessors(self, node: str) -> list[str]:
        return [parent for parent, child in self._edges if child == node]

    def is_directed(self) -> bool:
        return True


class FakeGraph(FakeDiGraph):
    """An undirected ``nx.Graph``: no ``predecessors``, ``is_directed()`` is False."""

    predecessors = None  # type: ignore[assignment]

    def is_directed(self) -> bool:
        return False


class FakeSeries:
    def __init__(self, values: Sequence[Any]) -> None:
        self._values = list(values)

    def tolist(self) -> list[Any]:
        return list(self._values)


class FakeDataFrame:
    """``pd.DataFrame({col: values})``: columns in order, ``df[col]``, ``len(df)``."""

    def __init__(self, columns: Mapping[str, Sequence[Any]]) -> None:
        self._columns = {name: list(values) for name, values in columns.items()}
        lengths = {len(values) for values in self._columns.values()}
        if len(lengths) > 1:
            raise ValueError("All arrays must be of the same length")

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __getitem__(self, column: str) -> FakeSeries:
        return FakeSeries(self._columns[column])

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), []))


def load_fixture(name: str) -> tuple[FakeDiGraph, FakeDataFrame]:
    """A lift-sys trace fixture as (DiGraph, DataFrame), the way lift-sys holds them."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    graph = FakeDiGraph(data["graph"]["edges"], data["graph"]["nodes"])
    return graph, FakeDataFrame(data["traces"])
