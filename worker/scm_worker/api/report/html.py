"""The report as one self-contained HTML page: the figures inline, the validation tables."""

from __future__ import annotations

import html
from typing import Any

from ... import __version__
from ...engine.scoring import verdict_text
from .figures import MAX_HISTOGRAMS, Figures
from .layout import Draws, chosen_by_text, number_text, query_label, score_text


class Document(Figures):
    """A report: the figures (``svg()``) and the page around them (``html()``)."""

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
            (
                f'<p class="verdict {"passed" if summary["validation"]["passed"] else "failed"}">'
                f"{esc(verdict_text(summary['validation']))}</p>"
            ),
            f"<p>{esc(facts_text(summary))}</p>",
            '<section id="graph">',
            "<h2>Graph</h2>",
            (
                '<p class="note">Layers left to right in topological order. Each node: name, '
                "mechanism, held-out score (R², or accuracy for categorical nodes). Linear edges "
                "show their coefficient.</p>"
            ),
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
            (
                f"<footer>scm-worker {esc(__version__)} · "
                f"DoWhy {esc(summary['metadata'].get('dowhy_version'))}</footer>"
            ),
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
            verdict = {
                "root": "—",
                "pass": f"≥ {threshold:g}",
                "fail": f"&lt; {threshold:g} (fail)",
            }[view.status]
            rows.append(
                f'<tr class="{view.status}"><th scope="row">{esc(view.name)}</th>'
                f"<td>{esc(', '.join(mechanism.get('parents', [])) or '—')}</td>"
                f"<td>{esc(view.mechanism)}</td><td>{esc(view.model or '—')}"
                f"{chosen_by_cell(mechanism)}</td>"
                f"<td>{esc(equation_text(view.name, mechanism))}</td>"
                f'<td class="num">{esc(score)}</td><td>{verdict}</td></tr>'
            )
        head = (
            "<tr><th>node</th><th>parents</th><th>mechanism</th><th>model</th>"
            "<th>linear equation</th><th>held-out score</th><th>vs threshold</th></tr>"
        )
        return f'<table class="nodes"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'

    def summary_table(self) -> str:
        validation = self.model.summary["validation"]
        metadata = self.model.summary["metadata"]
        pairs = [
            ("mean R²", score_text(validation["mean_r2"])),
            ("threshold", f"{validation['threshold']:g}"),
            (
                "rule",
                "mean R² over scored numeric nodes"
                if validation["rule"] == "mean"
                else "every node",
            ),
            ("passed", "yes" if validation["passed"] else "no"),
            ("failed nodes", ", ".join(validation["failed_nodes"]) or "none"),
            (
                "rows",
                (
                    f"{metadata.get('num_samples')} ({metadata.get('num_train')} train, "
                    f"{metadata.get('num_val')} held out; "
                    f"{metadata.get('dropped_rows', 0)} dropped)"
                ),
            ),
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
        compared = (
            ", beside an observational sample with the same seed" if drawn.observational else ""
        )
        more = (f" Histograms for the first {MAX_HISTOGRAMS} of {len(drawn.nodes)} queried nodes."
                if len(drawn.nodes) > MAX_HISTOGRAMS else "")
        return [
            '<section id="samples">',
            f"<h2>Samples: {esc(label)}</h2>",
            (
                f'<p class="note">{esc(meta["kind"])} sample, {meta["num_samples"]} draws, '
                f'seed {meta["seed"]}{esc(compared)}; bars show the fraction of draws per bin '
                f"(per category).{esc(more)}</p>"
            ),
            f'<figure class="samples">{self.histograms_svg(inline=True)}</figure>',
            statistics_table(drawn, self.model.kinds, label),
            "</section>",
        ]


# -- text ------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def chosen_by_cell(mechanism: dict[str, Any]) -> str:
    """The mark of a model the user or ``linear_tolerance`` chose, after its name."""
    text = chosen_by_text(mechanism)
    return f' <span class="chosen">({esc(text)})</span>' if text else ""


def facts_text(summary: dict[str, Any]) -> str:
    meta = summary["metadata"]
    return (
        f"{meta.get('num_nodes')} nodes, {meta.get('num_edges')} edges, "
        f"{meta.get('num_samples')} rows · quality {meta.get('quality')} · "
        f"seed {meta.get('seed')} · DoWhy {meta.get('dowhy_version')}"
    )


def equation_text(node: str, mechanism: dict[str, Any]) -> str:
    params = mechanism.get("params") or {}
    if mechanism.get("type") != "linear":
        return "—"
    if params.get("encoded_parents"):
        return "linear in one-hot encoded parents"
    terms = " + ".join(
        f"{number_text(c)}·{p}"
        for c, p in zip(params["coefficients"], mechanism["parents"], strict=False)
    )
    return f"{node} = {terms} + {number_text(params['intercept'])} + noise"


def warnings_list(warnings: list[dict[str, Any]]) -> str:
    if not warnings:
        return '<p class="none">none</p>'
    items = "".join(
        f"<li><code>{esc(w.get('code'))}</code>"
        f"{' (' + esc(w['node']) + ')' if w.get('node') else ''}: {esc(w.get('message'))}</li>"
        for w in warnings
    )
    return f'<ul class="warnings">{items}</ul>'


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
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #1b1f24; line-height: 1.4; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
figure { margin: 1em 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f3f5f8; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
tr.pass th[scope=row] { background: #dcefdc; } tr.fail th[scope=row] { background: #f9d6d5; }
tr.fail td { color: #8e1b1b; }
caption { caption-side: bottom; font-size: 0.85em; color: #57606a; text-align: left; }
.verdict { font-weight: 600; }
.verdict.passed { color: #2e7d32; } .verdict.failed { color: #c62828; }
.note, footer { color: #57606a; font-size: 0.9em; }
.chosen { color: #9a6700; font-size: 0.9em; }
"""
