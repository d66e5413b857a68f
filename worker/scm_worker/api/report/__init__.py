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

The package: ``layout`` (what goes where, what each node says; no matplotlib),
``figures`` (the SVG figures and the standalone SVG document), ``html`` (the page), and
here the method itself, which draws the samples through ``services.sample``.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from ... import __version__
from ...context import WorkerContext
from ...errors import prefixed_fields
from .html import Document
from .layout import Draws, layers, node_views

# -- the method ------------------------------------------------------------------------


def report(ctx: WorkerContext, services: ModuleType, model_id: str, fmt: str,
           samples: dict[str, Any] | None) -> dict[str, Any]:
    """Render a stored model (and optionally a sample comparison) as HTML or SVG."""
    started = time.perf_counter()
    model = ctx.store.get(model_id)
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


def draw_samples(ctx: WorkerContext, services: ModuleType, model_id: str,
                 spec: dict[str, Any] | None) -> Draws | None:
    """``spec`` is checked as ``sample``'s params (signatures.py); the model checks its nodes."""
    if spec is None:
        return None
    with prefixed_fields("samples"):
        queried = services.sample(ctx, model_id, **spec)
        baseline = None
        if spec["kind"] != "observational":
            baseline = services.sample(
                ctx,
                model_id,
                "observational",
                None,
                None,
                spec["num_samples"],
                spec["query_nodes"],
                queried["metadata"]["seed"],
                True,
            )
    return Draws(queried, baseline, list(queried["statistics"]))
