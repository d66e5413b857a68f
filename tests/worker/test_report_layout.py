"""The report's layered layout, its SVG clean-up and its drawing, without DoWhy.

The layout is pure networkx; the drawing tests render a stand-in model (graph, kinds,
config and fit summary as a real fit would leave them) with matplotlib, so they need the
worker environment but no fitting.
"""

from __future__ import annotations

import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest
from scm_worker.api.report import html, layout
from scm_worker.api.report.figures import clean_svg
from scm_worker.api.report.layout import layered_layout, layers

# -- layers and positions ----------------------------------------------------------------


def test_a_chain_is_one_node_per_layer_on_one_line() -> None:
    positions = layered_layout(["X", "Y", "Z"], [("X", "Y"), ("Y", "Z")])
    assert positions == {"X": (0.0, 0.0), "Y": (1.0, 0.0), "Z": (2.0, 0.0)}


def test_a_diamond_spreads_its_middle_layer_around_zero() -> None:
    positions = layered_layout(
        ["A", "B", "C", "D"], [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]
    )
    assert positions == {"A": (0.0, 0.0), "B": (1.0, 0.5), "C": (1.0, -0.5), "D": (2.0, 0.0)}


def test_a_node_sits_one_layer_after_its_deepest_parent() -> None:
    # X → Y → Z and X → Z: Z is in layer 2, not 1.
    assert layers(["X", "Y", "Z"], [("X", "Y"), ("Y", "Z"), ("X", "Z")]) == [["X"], ["Y"], ["Z"]]


def test_isolated_nodes_and_several_roots_share_layer_zero_in_node_order() -> None:
    assert layers(["B", "lonely", "A", "C"], [("A", "C"), ("B", "C")]) == [
        ["B", "lonely", "A"],
        ["C"],
    ]
    positions = layered_layout(["B", "lonely", "A", "C"], [("A", "C"), ("B", "C")])
    assert [positions[n][1] for n in ("B", "lonely", "A")] == [1.0, 0.0, -1.0]


def test_children_follow_their_parents_order_within_a_layer() -> None:
    # c1's parent is on top, so c1 goes on top although the node list names c2 first.
    positions = layered_layout(["r1", "r2", "c2", "c1"], [("r1", "c1"), ("r2", "c2")])
    assert positions["r1"][1] > positions["r2"][1]
    assert positions["c1"][1] > positions["c2"][1]


def test_the_layout_is_deterministic() -> None:
    nodes, edges = random_dag(random.Random(3), 30)
    assert layered_layout(nodes, edges) == layered_layout(list(nodes), list(edges))


@pytest.mark.parametrize("seed", range(25))
def test_random_dags_lay_out_left_to_right_without_overlaps(seed: int) -> None:
    rng = random.Random(seed)
    nodes, edges = random_dag(rng, rng.randint(1, 40))
    positions = layered_layout(nodes, edges)
    assert set(positions) == set(nodes)
    for parent, child in edges:
        assert positions[parent][0] < positions[child][0]
    by_layer: dict[float, list[float]] = {}
    for x, y in positions.values():
        by_layer.setdefault(x, []).append(y)
    assert sorted(by_layer) == [float(i) for i in range(len(by_layer))]
    for ys in by_layer.values():
        assert len(set(ys)) == len(ys)  # no two nodes on one spot
        assert sum(ys) == pytest.approx(0.0)  # centred
        assert sorted(ys) == [min(ys) + i for i in range(len(ys))]  # one unit apart
    # x is the longest path from a root: every non-root has a parent exactly one layer left
    for node in nodes:
        parents = [p for p, c in edges if c == node]
        if parents:
            assert max(positions[p][0] for p in parents) == positions[node][0] - 1
        else:
            assert positions[node][0] == 0.0


def random_dag(rng: random.Random, size: int) -> tuple[list[str], list[tuple[str, str]]]:
    names = [f"n{i}" for i in range(size)]
    edges = [(names[i], names[j]) for j in range(size) for i in range(j) if rng.random() < 0.15]
    shuffled = names[:]
    rng.shuffle(shuffled)
    return shuffled, edges


def test_importing_the_report_module_loads_neither_matplotlib_nor_dowhy() -> None:
    code = (
        "import sys, scm_worker.api.report; print(sorted({'matplotlib', 'dowhy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- SVG clean-up ----------------------------------------------------------------------------

MATPLOTLIB_SVG = """<?xml version="1.0" encoding="utf-8" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"
  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" height="10pt" viewBox="0 0 10 10" \
xmlns="http://www.w3.org/2000/svg" version="1.1">
 <metadata>
  <rdf:RDF xmlns:dc="http://purl.org/dc/elements/1.1/"><cc:Work/></rdf:RDF>
 </metadata>
 <defs><path id="m1" d="M 0 0 L 1 1"/></defs>
 <use xlink:href="#m1" x="1" y="1"/>
 <text x="1" y="1">X</text>
</svg>
"""


def test_inline_svg_has_no_http_at_all() -> None:
    svg = clean_svg(MATPLOTLIB_SVG, inline=True)
    assert (
        "http" not in svg and "DOCTYPE" not in svg and "<metadata" not in svg and "xlink" not in svg
    )
    assert svg.startswith("<svg ")
    root = ET.fromstring(svg)
    assert root.find("use").get("href") == "#m1"  # type: ignore[union-attr]
    assert root.find("text").text == "X"  # type: ignore[union-attr]


def test_standalone_svg_keeps_only_the_svg_namespace() -> None:
    svg = clean_svg(MATPLOTLIB_SVG, inline=False)
    assert svg.startswith("<?xml")
    assert "DOCTYPE" not in svg and "<metadata" not in svg and "xlink" not in svg
    assert svg.count("http") == 1 and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


# -- drawing a stand-in model --------------------------------------------------------------


def stand_in_model() -> Any:
    """X → C (classifier) → Y ← X, and X → W (linear, failing), as a fit's summary has them."""
    nodes = ("X", "C", "Y", "W")
    edges = (("X", "C"), ("C", "Y"), ("X", "Y"), ("X", "W"))
    summary = {
        "scm": {
            "graph": {"nodes": list(nodes), "edges": [list(e) for e in edges]},
            "mechanisms": {
                "X": {"type": "empirical"},
                "C": {
                    "type": "classifier",
                    "parents": ["X"],
                    "model": "LogisticRegression",
                    "classes": ["blue", "red"],
                },
                "Y": {
                    "type": "linear",
                    "parents": ["C", "X"],
                    "model": "LinearRegression",
                    "params": {
                        "coefficients": [1.0, -2.0, 1.5],
                        "intercept": 0.5,
                        "encoded_parents": True,
                    },
                },
                "W": {
                    "type": "linear",
                    "parents": ["X"],
                    "model": "LinearRegression",
                    "params": {"coefficients": [0.25], "intercept": -1.0},
                },
            },
        },
        "validation": {
            "r2_scores": {"Y": 0.98765, "W": 0.1234},
            "mean_r2": 0.555,
            "passed": False,
            "threshold": 0.7,
            "rule": "each",
            "failed_nodes": ["W"],
            "accuracy": {"C": 0.875},
        },
        "warnings": [
            {
                "code": "rows_dropped",
                "node": None,
                "message": "3 rows with <missing> values were dropped",
            }
        ],
        "metadata": {
            "num_samples": 200,
            "dropped_rows": 3,
            "num_nodes": 4,
            "num_edges": 4,
            "num_train": 160,
            "num_val": 40,
            "seed": 7,
            "quality": "GOOD",
            "dowhy_version": "0.14",
            "fitting_time_ms": 5,
        },
    }
    graph = SimpleNamespace(nodes=nodes, edges=edges)
    kinds = {"X": "numeric", "C": "categorical", "Y": "numeric", "W": "numeric"}
    return SimpleNamespace(
        graph=graph,
        kinds=kinds,
        config=SimpleNamespace(r2_threshold=0.7, r2_rule="each"),
        summary=summary,
    )


def stand_in_draws() -> layout.Draws:
    rng = random.Random(0)
    samples = {
        "X": [5.0] * 50,
        "C": [rng.choice(["red", "blue"]) for _ in range(50)],
        "Y": [rng.gauss(8, 1) for _ in range(50)],
        "W": [rng.gauss(0, 1) for _ in range(50)],
    }
    baseline = {
        "X": [rng.gauss(0, 1) for _ in range(50)],
        "C": [rng.choice(["red", "blue"]) for _ in range(50)],
        "Y": [rng.gauss(0, 1) for _ in range(50)],
        "W": [rng.gauss(0, 1) for _ in range(50)],
    }
    meta = {
        "kind": "interventional",
        "num_samples": 50,
        "seed": 1,
        "interventions": [{"node": "X", "type": "hard", "value": 5}],
    }
    stats = {
        n: {"mean": 0.0, "std": 1.0} if n != "C" else {"frequencies": {"red": 0.5, "blue": 0.5}}
        for n in samples
    }
    return layout.Draws(
        {"samples": samples, "statistics": stats, "metadata": meta},
        {"samples": baseline, "statistics": stats, "metadata": {**meta, "kind": "observational"}},
        list(samples),
    )


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [
        element.text or "" for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "text"
    ]


def test_the_graph_names_each_node_its_mechanism_and_its_score() -> None:
    model = stand_in_model()
    views = layout.node_views(model)
    assert [(v.name, v.status, v.score_name) for v in views] == [
        ("X", "root", None),
        ("C", "pass", "accuracy"),
        ("Y", "pass", "r2"),
        ("W", "fail", "r2"),
    ]
    texts = svg_texts(html.Document(model, "m-0000000000000000", views, None).svg())
    for expected in (
        "X",
        "C",
        "Y",
        "W",
        "empirical",
        "classifier",
        "linear",
        "accuracy 0.875",
        "R² 0.988",
        "R² 0.123 < 0.7",
        "0.250",
    ):
        assert expected in texts, (expected, texts)
    # Y's parents are one-hot encoded: its edges carry no coefficient
    assert "1.000" not in texts and "-2.000" not in texts


def test_the_html_report_is_self_contained_and_escapes_what_it_quotes() -> None:
    model = stand_in_model()
    document = html.Document(
        model, "m-0000000000000000", layout.node_views(model), stand_in_draws()
    )
    page = document.html()
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert "&lt;missing&gt;" in page and "<missing>" not in page
    assert page.count("<svg ") == 2 and document.histogram_nodes == ["X", "C", "Y", "W"]
    for chunk in page.split("<svg ")[1:]:
        texts = svg_texts("<svg " + chunk.split("</svg>")[0] + "</svg>")
        assert texts
    assert 'id="samples"' in page and "do(X = 5)" in page and "observational" in page


def test_a_standalone_svg_with_samples_holds_graph_and_histograms() -> None:
    model = stand_in_model()
    svg = html.Document(
        model, "m-0000000000000000", layout.node_views(model), stand_in_draws()
    ).svg()
    texts = svg_texts(svg)
    assert "do(X = 5)" in texts and "observational" in texts and "red" in texts and "blue" in texts
    assert svg.count("http") == 1
