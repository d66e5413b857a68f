"""The ``report`` method: a fitted model as a picture, in one self-contained document.

What is drawn (with matplotlib, imported here lazily with the Agg backend, so the
handshake and every other method never load it):

- the DAG, laid out by topological layers (``networkx.topological_generations``): x is
  the layer, nodes spread vertically within their layer. Each node shows its name, its
  mechanism (empirical, linear, the non-linear model's name, classifier) and its
  held-out R² (accuracy for categorical nodes), coloured by pass/fail against the
  model's threshold; linear edges carry their coefficient;
- in HTML, a table of the validation figures and the fit's warnings;
- with ``samples`` (a ``sample`` request: kind, interventions, observed, num_samples,
  query_nodes, seed), histograms of the queried nodes' sampled distributions beside an
  observational draw with the same seed (bar charts of frequencies for categorical
  nodes). Both draws go through ``services.sample``, so they are checked and seeded
  exactly like the ``sample`` method.

Self-contained: no scripts, no fonts, no links. Text is kept as text
(``svg.fonttype = "none"``) so node labels are real ``<text>`` elements in the DOM.
matplotlib's SVG carries a DOCTYPE and RDF metadata that name ``http://`` URLs; both are
stripped. ``xlink:href`` becomes SVG 2's plain ``href``. The SVG namespace is dropped
from figures inlined in HTML (the HTML parser puts ``<svg>`` in it anyway), so an HTML
report holds no ``http`` string at all; a standalone ``svg`` report keeps
``xmlns="http://www.w3.org/2000/svg"``, which a browser needs to render the file — it
is a namespace name, never fetched.
"""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import networkx as nx

from . import __version__
from .context import WorkerContext
from .errors import INVALID_PARAMS, LIMIT_EXCEEDED, WorkerError, invalid_params
from .requests import require_dict, require_model_id

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

    from .fitting import FittedModel

FORMATS = ("html", "svg")
SAMPLE_KEYS = ("kind", "interventions", "observed", "num_samples", "query_nodes", "seed")
#: At most this many queried nodes get a histogram; the document says when more were queried.
MAX_HISTOGRAMS = 24
HISTOGRAM_BINS = 30
#: Figures never grow past this many inches a side; large graphs get smaller print instead.
MAX_FIGURE_INCHES = 60.0

COLOURS = {
    # status: (fill, edge)
    "pass": ("#dcefdc", "#2e7d32"),
    "fail": ("#f9d6d5", "#c62828"),
    "root": ("#e6ecf5", "#5c6f8a"),
}
STATUS_TEXT = {"pass": "passes the threshold", "fail": "below the threshold", "root": "root (not scored)"}
OBSERVED_COLOUR = "#8c96a6"
#: matplotlib writes SVG at 72 dpi; figures are made at it too (see save_svg).
SVG_DPI = 72
QUERIED_COLOUR = "#d9822b"


# -- layout ----------------------------------------------------------------------------


def layers(nodes: Sequence[str], edges: Sequence[Sequence[str]]) -> list[list[str]]:
    """Topological generations: roots first, every node one layer after its deepest parent."""
    digraph = nx.DiGraph()
    digraph.add_nodes_from(nodes)
    digraph.add_edges_from((a, b) for a, b in edges)
    order = {node: i for i, node in enumerate(nodes)}
    return [sorted(layer, key=order.__getitem__) for layer in nx.topological_generations(digraph)]


def layered_layout(nodes: Sequence[str], edges: Sequence[Sequence[str]]) -> dict[str, tuple[float, float]]:
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
            layer = sorted(layer, key=lambda n: -sum(positions[p][1] for p in parents[n]) / len(parents[n]))
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
        lines = [self.name, *mechanism_label(self.mechanism, self.model).replace("+", " +\n").split("\n")]
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
    depth = {node: i for i, layer in enumerate(layers(model.graph.nodes, model.graph.edges)) for node in layer}
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


# -- the method ------------------------------------------------------------------------


def report(ctx: WorkerContext, services: ModuleType, model_id: Any, fmt: Any, samples: Any) -> dict[str, Any]:
    """Render a stored model (and optionally a sample comparison) as HTML or SVG."""
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise invalid_params("format", f"must be one of {list(FORMATS)}, got {fmt!r}")
    model = ctx.store.get(require_model_id(model_id))
    drawn = draw_samples(ctx, services, model_id, samples)
    ctx.progress("rendering", 0, 1)
    views = node_views(model)
    document = Document(model, model_id, views, drawn)
    content = document.html() if fmt == "html" else document.svg()
    return {
        "format": fmt,
        "content": content,
        "nodes": [view.as_json() for view in views],
        "metadata": {
            "model_id": model_id,
            "num_nodes": len(model.graph.nodes),
            "num_edges": len(model.graph.edges),
            "layers": layers(model.graph.nodes, model.graph.edges),
            "histograms": document.histogram_nodes,
            "samples": drawn.queried["metadata"] if drawn is not None else None,
            "bytes": len(content.encode()),
            "render_time_ms": int((time.perf_counter() - started) * 1000),
            "worker_version": __version__,
        },
    }


@dataclass(frozen=True)
class Draws:
    """The queried sample and the observational one drawn with the same seed (None when
    the query itself is observational)."""

    queried: dict[str, Any]
    observational: dict[str, Any] | None
    nodes: list[str]


def draw_samples(ctx: WorkerContext, services: ModuleType, model_id: str, spec: Any) -> Draws | None:
    if spec is None:
        return None
    spec = require_dict(spec, "samples")
    for key in spec:
        if key not in SAMPLE_KEYS:
            raise invalid_params(f"samples.{key}", f"unknown parameter (expected one of {list(SAMPLE_KEYS)})")
    interventions = spec.get("interventions")
    kind = spec.get("kind", "interventional" if interventions else "observational")
    num_samples = spec.get("num_samples", 1000)
    with prefixed_fields("samples"):
        queried = services.sample(ctx, model_id, kind, interventions, spec.get("observed"), num_samples,
                                  spec.get("query_nodes"), spec.get("seed"), True)
        baseline = None
        if kind != "observational":
            baseline = services.sample(ctx, model_id, "observational", None, None, num_samples,
                                       spec.get("query_nodes"), queried["metadata"]["seed"], True)
    return Draws(queried, baseline, list(queried["statistics"]))


@contextmanager
def prefixed_fields(prefix: str) -> Iterator[None]:
    """Errors about a nested request name their field under ``prefix`` (samples.kind)."""
    try:
        yield
    except WorkerError as exc:
        data = exc.data if isinstance(exc.data, dict) else None
        if exc.code not in (INVALID_PARAMS, LIMIT_EXCEEDED) or data is None or "field" not in data:
            raise
        field = str(data["field"])
        raise WorkerError(exc.code, exc.message.replace(field, f"{prefix}.{field}", 1),
                          {**data, "field": f"{prefix}.{field}"}) from exc


# -- drawing ---------------------------------------------------------------------------


def _matplotlib() -> Any:
    """Import matplotlib with the Agg backend, only when a report is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


RC = {
    "svg.fonttype": "none",  # text stays <text>: searchable labels, no embedded glyphs
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


class Document:
    def __init__(self, model: FittedModel, model_id: str, views: list[NodeView], drawn: Draws | None) -> None:
        self.model = model
        self.model_id = model_id
        self.views = views
        self.drawn = drawn
        self.histogram_nodes = drawn.nodes[:MAX_HISTOGRAMS] if drawn is not None else []

    # -- figures --
    def graph_size(self) -> tuple[float, float]:
        generations = layers(self.model.graph.nodes, self.model.graph.edges)
        tallest = max((len(layer) for layer in generations), default=1)
        return (min(MAX_FIGURE_INCHES, 1.0 + 2.9 * len(generations)),
                min(MAX_FIGURE_INCHES, 1.2 + 1.15 * tallest))

    def histogram_size(self) -> tuple[float, float]:
        columns = min(4, len(self.histogram_nodes))
        rows = -(-len(self.histogram_nodes) // columns)
        return min(MAX_FIGURE_INCHES, 0.4 + 3.2 * columns), min(MAX_FIGURE_INCHES, 0.9 + 2.4 * rows)

    def graph_svg(self, inline: bool) -> str:
        width, height = self.graph_size()
        return figure_svg("graph", (width, height), lambda fig: self.draw_graph(fig, title=not inline), inline)

    def histograms_svg(self, inline: bool) -> str:
        return figure_svg("samples", self.histogram_size(), self.draw_histograms, inline)

    def draw_graph(self, fig: Figure | SubFigure, title: bool) -> None:
        from matplotlib.patches import FancyArrowPatch, Patch

        model, threshold = self.model, self.model.config.r2_threshold
        positions = layered_layout(model.graph.nodes, model.graph.edges)
        width = 1 + max(x for x, _ in positions.values())
        height = 1 + max(abs(y) for _, y in positions.values()) * 2
        top = 0.86 if title else 0.94
        ax = fig.add_axes((0.0, 0.1, 1.0, top - 0.1))
        ax.set_axis_off()
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(-height / 2, height / 2)
        boxes = {}
        for view in self.views:
            fill, edge = COLOURS[view.status]
            x, y = positions[view.name]
            text = ax.text(x, y, "\n".join(view.lines(threshold)), ha="center", va="center", zorder=3, fontsize=10,
                           multialignment="center", color="#1b1f24",
                           bbox={"boxstyle": "round,pad=0.55", "facecolor": fill, "edgecolor": edge,
                                 "linewidth": 2.2 if view.status == "fail" else 1.2})
            text.set_gid(f"node-{view.name}")
            boxes[view.name] = text
        coefficients = edge_coefficients(model)
        for parent, child in model.graph.edges:
            span = positions[child][0] - positions[parent][0]
            rad = 0.0 if span <= 1 and positions[child][1] == positions[parent][1] else 0.12 * min(span, 3)
            arrow = FancyArrowPatch(positions[parent], positions[child], arrowstyle="-|>", mutation_scale=14,
                                    color="#4a5568", linewidth=1.3, zorder=2, shrinkA=2, shrinkB=2,
                                    connectionstyle=f"arc3,rad={rad}",
                                    patchA=boxes[parent].get_bbox_patch(), patchB=boxes[child].get_bbox_patch())
            ax.add_patch(arrow)
            if (parent, child) in coefficients:
                x, y = arc_midpoint(ax, positions[parent], positions[child], rad)
                ax.text(x, y, number_text(coefficients[(parent, child)]), ha="center", va="center", zorder=5,
                        fontsize=8, color="#1b1f24",
                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "#c3cad5",
                              "linewidth": 0.6})
        legend = [Patch(facecolor=COLOURS[s][0], edgecolor=COLOURS[s][1], label=label)
                  for s, label in (("pass", f"held-out score ≥ {threshold:g}"),
                                   ("fail", f"held-out score < {threshold:g}"), ("root", "root (not scored)"))]
        fig.legend(handles=legend, loc="lower center", ncol=3, frameon=False, fontsize=8)
        if title:
            fig.text(0.5, 0.97, f"{self.model_id} · {verdict_text(model.summary['validation'])}",
                     ha="center", va="top", fontsize=10)

    def draw_histograms(self, fig: Figure | SubFigure) -> None:
        import numpy as np
        from matplotlib.patches import Patch

        drawn = self.drawn
        assert drawn is not None
        nodes = self.histogram_nodes
        columns = min(4, len(nodes))
        rows = -(-len(nodes) // columns)
        _, height = self.histogram_size()
        spacing = {"top": 1 - 0.6 / height, "bottom": 0.45 / height, "left": 0.08, "right": 0.98,
                   "hspace": 0.6, "wspace": 0.35}
        axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False, gridspec_kw=spacing)).ravel()
        queried_label = query_label(drawn.queried["metadata"])
        for ax, node in zip(axes, nodes, strict=False):
            queried = drawn.queried["samples"][node]
            observed = drawn.observational["samples"][node] if drawn.observational is not None else None
            if self.model.kinds[node] == "numeric":
                numeric_histogram(ax, [v for v in queried if v is not None],
                                  None if observed is None else [v for v in observed if v is not None])
            else:
                frequency_bars(ax, queried, observed)
            ax.set_title(node)
        for ax in axes[len(nodes):]:
            ax.set_axis_off()
        handles = [Patch(color=QUERIED_COLOUR, label=queried_label)]
        if drawn.observational is not None:
            handles.insert(0, Patch(color=OBSERVED_COLOUR, label="observational"))
        fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False)

    # -- documents --
    def svg(self) -> str:
        """One standalone SVG: the graph (with a title line) above the histograms, if any."""
        mpl = _matplotlib()
        from matplotlib.figure import Figure

        width, height = self.graph_size()
        if not self.histogram_nodes:
            return figure_svg("report", (width, height), lambda fig: self.draw_graph(fig, title=True), False)
        hist_width, hist_height = self.histogram_size()
        with mpl.rc_context({**RC, "svg.hashsalt": "report"}):
            fig = Figure(figsize=(max(width, hist_width), height + hist_height), dpi=SVG_DPI)
            upper, lower = fig.subfigures(2, 1, height_ratios=[height, hist_height])
            self.draw_graph(upper, title=True)
            self.draw_histograms(lower)
            return clean_svg(save_svg(fig), inline=False)

    def html(self) -> str:
        model = self.model
        summary = model.summary
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta name="generator" content="scm-worker {esc(__version__)}">',
            f"<title>SCM report · {esc(self.model_id)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>Fitted SCM <code>{esc(self.model_id)}</code></h1>",
            (f'<p class="verdict {"passed" if summary["validation"]["passed"] else "failed"}">'
             f"{esc(verdict_text(summary['validation']))}</p>"),
            f"<p>{esc(facts_text(summary))}</p>",
            '<section id="graph">',
            "<h2>Graph</h2>",
            ('<p class="note">Layers left to right in topological order. Each node: name, mechanism, '
             "held-out score (R², or accuracy for categorical nodes). Linear edges show their "
             "coefficient.</p>"),
            f'<figure class="graph">{self.graph_svg(inline=True)}</figure>',
            "</section>",
            '<section id="validation">',
            "<h2>Validation</h2>",
            self.validation_table(),
            self.summary_table(),
            "<h3>Warnings</h3>",
            warnings_list(summary.get("warnings", [])),
            "</section>",
        ]
        if self.drawn is not None:
            parts += self.samples_section()
        parts += [
            (f"<footer>scm-worker {esc(__version__)} · DoWhy {esc(summary['metadata'].get('dowhy_version'))}"
             "</footer>"),
            "</body>",
            "</html>",
            "",
        ]
        return "\n".join(parts)

    def validation_table(self) -> str:
        mechanisms = self.model.summary["scm"]["mechanisms"]
        threshold = self.model.config.r2_threshold
        rows = []
        for view in self.views:
            mechanism = mechanisms[view.name]
            label = "R²" if view.score_name == "r2" else "accuracy"
            score = "—" if view.score_name is None else f"{label} {score_text(view.score)}"
            verdict = {"root": "—", "pass": f"≥ {threshold:g}", "fail": f"&lt; {threshold:g} (fail)"}[view.status]
            rows.append(
                f'<tr class="{view.status}"><th scope="row">{esc(view.name)}</th>'
                f"<td>{esc(', '.join(mechanism.get('parents', [])) or '—')}</td>"
                f"<td>{esc(view.mechanism)}</td><td>{esc(view.model or '—')}</td>"
                f"<td>{esc(equation_text(view.name, mechanism))}</td>"
                f'<td class="num">{esc(score)}</td><td>{verdict}</td></tr>'
            )
        head = ("<tr><th>node</th><th>parents</th><th>mechanism</th><th>model</th><th>linear equation</th>"
                "<th>held-out score</th><th>vs threshold</th></tr>")
        return f'<table class="nodes"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'

    def summary_table(self) -> str:
        validation = self.model.summary["validation"]
        metadata = self.model.summary["metadata"]
        pairs = [
            ("mean R²", score_text(validation["mean_r2"])),
            ("threshold", f"{validation['threshold']:g}"),
            ("rule", "mean R² over scored numeric nodes" if validation["rule"] == "mean" else "every node"),
            ("passed", "yes" if validation["passed"] else "no"),
            ("failed nodes", ", ".join(validation["failed_nodes"]) or "none"),
            ("rows", (f"{metadata.get('num_samples')} ({metadata.get('num_train')} train, "
                      f"{metadata.get('num_val')} held out; {metadata.get('dropped_rows', 0)} dropped)")),
            ("quality", str(metadata.get("quality"))),
            ("seed", str(metadata.get("seed"))),
            ("fitting time", f"{metadata.get('fitting_time_ms')} ms"),
        ]
        body = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in pairs)
        return f'<table class="summary"><tbody>{body}</tbody></table>'

    def samples_section(self) -> list[str]:
        drawn = self.drawn
        assert drawn is not None
        meta = drawn.queried["metadata"]
        label = query_label(meta)
        compared = ", beside an observational sample with the same seed" if drawn.observational else ""
        more = (f" Histograms for the first {MAX_HISTOGRAMS} of {len(drawn.nodes)} queried nodes."
                if len(drawn.nodes) > MAX_HISTOGRAMS else "")
        return [
            '<section id="samples">',
            f"<h2>Samples: {esc(label)}</h2>",
            (f'<p class="note">{esc(meta["kind"])} sample, {meta["num_samples"]} draws, seed {meta["seed"]}'
             f"{esc(compared)}; bars show the fraction of draws per bin (per category).{esc(more)}</p>"),
            f'<figure class="samples">{self.histograms_svg(inline=True)}</figure>',
            statistics_table(drawn, self.model.kinds, label),
            "</section>",
        ]


def figure_svg(salt: str, size: tuple[float, float], draw: Any, inline: bool) -> str:
    mpl = _matplotlib()
    from matplotlib.figure import Figure

    # The salt keeps clip-path and marker ids distinct between figures of one document.
    with mpl.rc_context({**RC, "svg.hashsalt": salt}):
        fig = Figure(figsize=size, dpi=SVG_DPI)
        draw(fig)
        return clean_svg(save_svg(fig), inline)


def save_svg(fig: Figure) -> str:
    """The figure as SVG text. Edges are drawn under the node boxes and clipped to them, so
    the boxes must have their final place before the edges are drawn: one draw without
    output first, at the SVG's own 72 dpi so that display coordinates do not change."""
    fig.draw_without_rendering()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


_XML_DECLARATION = re.compile(r"<\?xml[^>]*\?>\s*")
_DOCTYPE = re.compile(r"<!DOCTYPE[^>]*>\s*")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_XLINK_NS = re.compile(r'\s+xmlns:xlink="[^"]*"')
_SVG_NS = re.compile(r'\s+xmlns="http://www\.w3\.org/2000/svg"')


def clean_svg(svg: str, inline: bool) -> str:
    """matplotlib's SVG without the DOCTYPE, the RDF metadata and the xlink namespace.

    ``inline`` (for HTML) also drops the XML declaration and the SVG namespace
    attribute, which HTML does not need; a standalone SVG keeps both.
    """
    svg = _DOCTYPE.sub("", svg)
    svg = _METADATA.sub("", svg)
    svg = _XLINK_NS.sub("", svg).replace("xlink:href=", "href=")
    if inline:
        svg = _SVG_NS.sub("", _XML_DECLARATION.sub("", svg))
    return svg.strip() + "\n"


def arc_midpoint(ax: Any, start: tuple[float, float], end: tuple[float, float], rad: float) -> tuple[float, float]:
    """The middle of matplotlib's ``arc3`` curve (computed in display space, as it does)."""
    (x1, y1), (x2, y2) = ax.transData.transform([start, end])
    mx, my = (x1 + x2) / 2 + rad * (y2 - y1) / 2, (y1 + y2) / 2 - rad * (x2 - x1) / 2
    x, y = ax.transData.inverted().transform((mx, my))
    return float(x), float(y)


def numeric_histogram(ax: Any, queried: list[float], observed: list[float] | None) -> None:
    import numpy as np

    values = np.asarray(queried + (observed or []), dtype=float)
    if values.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    low, high = float(values.min()), float(values.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, HISTOGRAM_BINS + 1)
    if observed:
        ax.hist(observed, bins=bins, weights=np.full(len(observed), 1 / len(observed)), color=OBSERVED_COLOUR,
                alpha=0.75)
    if queried:
        ax.hist(queried, bins=bins, weights=np.full(len(queried), 1 / len(queried)), color=QUERIED_COLOUR,
                alpha=0.6 if observed else 0.85)
    ax.set_ylabel("fraction")


def frequency_bars(ax: Any, queried: list[Any], observed: list[Any] | None) -> None:
    import numpy as np

    categories = sorted({str(v) for v in queried + (observed or [])})
    positions = np.arange(len(categories))

    def fractions(values: list[Any]) -> list[float]:
        counts = {c: 0 for c in categories}
        for value in values:
            counts[str(value)] += 1
        return [counts[c] / len(values) if values else 0.0 for c in categories]

    width = 0.4 if observed is not None else 0.7
    if observed is not None:
        ax.bar(positions - width / 2, fractions(observed), width, color=OBSERVED_COLOUR)
        ax.bar(positions + width / 2, fractions(queried), width, color=QUERIED_COLOUR)
    else:
        ax.bar(positions, fractions(queried), width, color=QUERIED_COLOUR)
    ax.set_xticks(positions, categories)
    ax.set_ylabel("fraction")


# -- text ------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def verdict_text(validation: dict[str, Any]) -> str:
    mean, threshold = validation["mean_r2"], validation["threshold"]
    verdict = "passed" if validation["passed"] else "failed"
    if validation["rule"] == "each":
        failed = ", ".join(validation["failed_nodes"])
        detail = f"every node's R² ≥ {threshold:g}" + (f"; below: {failed}" if failed else "")
    elif mean is None:
        detail = "no numeric node to score"
    else:
        detail = f"mean R² {score_text(mean)} {'≥' if mean >= threshold else '<'} {threshold:g}"
    return f"validation {verdict}: {detail}"


def facts_text(summary: dict[str, Any]) -> str:
    meta = summary["metadata"]
    return (f"{meta.get('num_nodes')} nodes, {meta.get('num_edges')} edges, {meta.get('num_samples')} rows · "
            f"quality {meta.get('quality')} · seed {meta.get('seed')} · DoWhy {meta.get('dowhy_version')}")


def equation_text(node: str, mechanism: dict[str, Any]) -> str:
    params = mechanism.get("params") or {}
    if mechanism.get("type") != "linear":
        return "—"
    if params.get("encoded_parents"):
        return "linear in one-hot encoded parents"
    terms = " + ".join(f"{number_text(c)}·{p}" for c, p in zip(params["coefficients"], mechanism["parents"],
                                                              strict=False))
    return f"{node} = {terms} + {number_text(params['intercept'])} + noise"


def warnings_list(warnings: list[dict[str, Any]]) -> str:
    if not warnings:
        return '<p class="none">none</p>'
    items = "".join(
        f"<li><code>{esc(w.get('code'))}</code>{' (' + esc(w['node']) + ')' if w.get('node') else ''}: "
        f"{esc(w.get('message'))}</li>"
        for w in warnings
    )
    return f'<ul class="warnings">{items}</ul>'


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


def statistics_table(drawn: Draws, kinds: dict[str, Any], label: str) -> str:
    def describe(stats: dict[str, Any] | None) -> str:
        if stats is None:
            return "—"
        if "mean" in stats:
            mean, std = stats["mean"], stats["std"]
            return "—" if mean is None else f"{number_text(mean)} ± {number_text(std or 0.0)}"
        frequencies = stats.get("frequencies") or {}
        return ", ".join(f"{k} {v:.2f}" for k, v in sorted(frequencies.items())) or "—"

    observed = drawn.observational["statistics"] if drawn.observational is not None else None
    head = "<tr><th>node</th>" + ("<th>observational</th>" if observed is not None else "") + \
        f"<th>{esc(label)}</th></tr>"
    rows = []
    for node in drawn.nodes:
        cells = f'<th scope="row">{esc(node)}</th>'
        if observed is not None:
            cells += f'<td class="num">{esc(describe(observed.get(node)))}</td>'
        cells += f'<td class="num">{esc(describe(drawn.queried["statistics"].get(node)))}</td>'
        rows.append(f"<tr>{cells}</tr>")
    note = "mean ± std for numeric nodes, category frequencies for categorical ones"
    return (f'<table class="statistics"><caption>{note}</caption><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1b1f24; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
figure { margin: 1em 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f3f5f8; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
tr.pass th[scope=row] { background: #dcefdc; } tr.fail th[scope=row] { background: #f9d6d5; }
tr.fail td { color: #8e1b1b; }
caption { caption-side: bottom; font-size: 0.85em; color: #57606a; text-align: left; }
.verdict { font-weight: 600; } .verdict.passed { color: #2e7d32; } .verdict.failed { color: #c62828; }
.note, footer { color: #57606a; font-size: 0.9em; }
"""
