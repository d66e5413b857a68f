"""The report's figures: the layered DAG and the sample histograms, as clean SVG.

matplotlib is imported only when a figure is drawn (Agg backend); text stays ``<text>``.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from ...engine.scoring import verdict_text
from .layout import (
    Draws,
    NodeView,
    edge_coefficients,
    layered_layout,
    layers,
    number_text,
    query_label,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

    from ...engine.fitting import FittedModel

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
OBSERVED_COLOUR = "#8c96a6"
#: matplotlib writes SVG at 72 dpi; figures are made at it too (see save_svg).
SVG_DPI = 72
QUERIED_COLOUR = "#d9822b"


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


class Figures:
    """The figures of one report (``svg()``: the standalone SVG document)."""

    def __init__(
        self, model: FittedModel, model_id: str, views: list[NodeView], drawn: Draws | None
    ) -> None:
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
        return figure_svg(
            "graph", (width, height), lambda fig: self.draw_graph(fig, title=not inline), inline
        )

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
            text = ax.text(
                x,
                y,
                "\n".join(view.lines(threshold)),
                ha="center",
                va="center",
                zorder=3,
                fontsize=10,
                multialignment="center",
                color="#1b1f24",
                bbox={
                    "boxstyle": "round,pad=0.55",
                    "facecolor": fill,
                    "edgecolor": edge,
                    "linewidth": 2.2 if view.status == "fail" else 1.2,
                },
            )
            text.set_gid(f"node-{view.name}")
            boxes[view.name] = text
        coefficients = edge_coefficients(model)
        for parent, child in model.graph.edges:
            span = positions[child][0] - positions[parent][0]
            rad = (
                0.0
                if span <= 1 and positions[child][1] == positions[parent][1]
                else 0.12 * min(span, 3)
            )
            arrow = FancyArrowPatch(
                positions[parent],
                positions[child],
                arrowstyle="-|>",
                mutation_scale=14,
                color="#4a5568",
                linewidth=1.3,
                zorder=2,
                shrinkA=2,
                shrinkB=2,
                connectionstyle=f"arc3,rad={rad}",
                patchA=boxes[parent].get_bbox_patch(),
                patchB=boxes[child].get_bbox_patch(),
            )
            ax.add_patch(arrow)
            if (parent, child) in coefficients:
                x, y = arc_midpoint(ax, positions[parent], positions[child], rad)
                ax.text(
                    x,
                    y,
                    number_text(coefficients[(parent, child)]),
                    ha="center",
                    va="center",
                    zorder=5,
                    fontsize=8,
                    color="#1b1f24",
                    bbox={
                        "boxstyle": "round,pad=0.2",
                        "facecolor": "white",
                        "edgecolor": "#c3cad5",
                        "linewidth": 0.6,
                    },
                )
        legend = [
            Patch(facecolor=COLOURS[s][0], edgecolor=COLOURS[s][1], label=label)
            for s, label in (
                ("pass", f"held-out score ≥ {threshold:g}"),
                ("fail", f"held-out score < {threshold:g}"),
                ("root", "root (not scored)"),
            )
        ]
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
        axes = np.atleast_1d(
            fig.subplots(rows, columns, squeeze=False, gridspec_kw=spacing)
        ).ravel()
        queried_label = query_label(drawn.queried["metadata"])
        for ax, node in zip(axes, nodes, strict=False):
            queried = drawn.queried["samples"][node]
            observed = (
                drawn.observational["samples"][node] if drawn.observational is not None else None
            )
            if self.model.kinds[node] == "numeric":
                numeric_histogram(
                    ax,
                    [v for v in queried if v is not None],
                    None if observed is None else [v for v in observed if v is not None],
                )
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
            return figure_svg(
                "report", (width, height), lambda fig: self.draw_graph(fig, title=True), False
            )
        hist_width, hist_height = self.histogram_size()
        with mpl.rc_context({**RC, "svg.hashsalt": "report"}):
            fig = Figure(figsize=(max(width, hist_width), height + hist_height), dpi=SVG_DPI)
            upper, lower = fig.subfigures(2, 1, height_ratios=[height, hist_height])
            self.draw_graph(upper, title=True)
            self.draw_histograms(lower)
            return clean_svg(save_svg(fig), inline=False)


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


def arc_midpoint(
    ax: Any, start: tuple[float, float], end: tuple[float, float], rad: float
) -> tuple[float, float]:
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
        _fraction_histogram(ax, observed, bins, OBSERVED_COLOUR, 0.75)
    if queried:
        _fraction_histogram(ax, queried, bins, QUERIED_COLOUR, 0.6 if observed else 0.85)
    ax.set_ylabel("fraction")



def _fraction_histogram(ax: Any, values: list[float], bins: Any, colour: str, alpha: float) -> None:
    """Bars of the fraction of ``values`` in each bin, so draws of different sizes compare."""
    import numpy as np

    ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), color=colour,
            alpha=alpha)

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
