"""Plain-text rendering for the CLI: aligned tables, fit summaries, sample statistics, errors.

Everything here returns strings and prints nothing, so the CLI and the demo decide where
output goes. Numbers are shown with a few significant decimals; ✓/✗ mark scores against
the fit's R² threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import (
    InsufficientData,
    InvalidParams,
    LimitExceeded,
    RemoteError,
    UnsupportedQuery,
    ValidationFailed,
    WorkerCrashed,
    WorkerError,
    WorkerStartError,
    WorkerTimeout,
)
from .results import FitResult, SampleResult

OK = "✓"
FAIL = "✗"
NONE = "—"
STAT_COLUMNS = ("mean", "std", "q05", "q50", "q95")


# -- cells and tables ------------------------------------------------------------------


def num(value: Any, places: int = 3) -> str:
    """A number for a table cell: fixed decimals in a readable range, scientific outside it."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 10 ** -places <= abs(value) < 1e6:
        return f"{value:.{places}f}"
    return f"{value:.{places}e}"


def mark(passed: bool) -> str:
    return OK if passed else FAIL


def _is_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: int = 2) -> str:
    """Columns aligned on their widest cell; columns of plain numbers are right-aligned."""
    body = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    right = [bool(body) and all(_is_numeric(r[i]) or r[i] == NONE for r in body)
             for i in range(len(headers))]
    pad = " " * indent

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w)
                 for c, w, r in zip(cells, widths, right, strict=True)]
        return (pad + "  ".join(parts)).rstrip()

    rule = pad + "  ".join("─" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def key_values(pairs: Iterable[tuple[str, str]], indent: int = 0, width: int = 0) -> str:
    """``label  value`` lines with the values aligned; multi-line values stay aligned."""
    items = list(pairs)
    width = max([width, *(len(k) for k, _ in items)])
    lines = []
    for key, value in items:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{' ' * indent}{key.ljust(width)}  {first}".rstrip())
        lines.extend(f"{' ' * (indent + width + 2)}{more}".rstrip() for more in rest)
    return "\n".join(lines)


# -- fits ------------------------------------------------------------------------------


def fit_summary(fit: FitResult) -> str:
    """The whole readable report of one fit: status, nodes, equations, validation, data."""
    pairs = [
        ("model", fit.model_id),
        ("status", status_text(fit.status)),
        ("validation", validation_line(fit.validation)),
    ]
    equations = linear_equations(fit)
    details = [("linear", "\n".join(equations))] if equations else []
    details += [("warnings", warnings_text(fit.warnings)), ("data", data_line(fit.metadata)),
                ("timing", timing_line(fit.metadata))]
    width = max(len(key) for key, _ in pairs + details)
    return "\n".join([key_values(pairs, width=width), "", node_table(fit), "",
                      key_values(details, width=width)])


def status_text(status: str) -> str:
    return f"{status} {OK}" if status == "success" else f"{status} (see warnings)"


def node_table(fit: FitResult) -> str:
    threshold = fit.validation.get("threshold")
    rows = []
    for node in fit.scm["graph"]["nodes"]:
        mechanism = fit.scm["mechanisms"].get(node, {})
        rows.append([
            node,
            mechanism.get("type", "?"),
            model_name(mechanism),
            ", ".join(mechanism.get("parents", [])) or NONE,
            held_out(node, fit.validation, threshold),
        ])
    return table(["node", "mechanism", "model", "parents", "held-out score"], rows)


def model_name(mechanism: Mapping[str, Any]) -> str:
    name = str(mechanism.get("model", "")) or NONE
    name = f"{name} (discrete)" if mechanism.get("discrete") else name
    chosen = chosen_by_text(mechanism)
    return f"{name} [{chosen}]" if chosen else name


def chosen_by_text(mechanism: Mapping[str, Any]) -> str:
    """Who chose a model that is not DoWhy's own choice (the fit's ``chosen_by``): the
    user's ``config.mechanisms``, ``linear_tolerance`` over DoWhy's named model, or the
    worker's own FAST selection."""
    chosen_by = mechanism.get("chosen_by")
    if chosen_by == "user":
        return "set by user"
    if chosen_by == "FAST":
        return "chosen by FAST"
    if chosen_by == "linear_tolerance":
        dowhy = (mechanism.get("override") or {}).get("dowhy_model", "?")
        return f"linear_tolerance; DoWhy chose {dowhy}"
    return ""


def held_out(node: str, validation: Mapping[str, Any], threshold: float | None) -> str:
    r2 = validation.get("r2_scores", {}).get(node)
    if r2 is not None:
        verdict = f" {mark(r2 >= threshold)}" if threshold is not None else ""
        return f"R² {r2:.4f}{verdict}"
    accuracy = validation.get("accuracy", {}).get(node)
    if accuracy is not None:
        return f"accuracy {accuracy:.4f}"
    return NONE


def linear_equations(fit: FitResult) -> list[str]:
    """``Y = 1.9959·X + 0.0072`` for each linear node with per-parent coefficients."""
    lines = []
    for node in fit.scm["graph"]["nodes"]:
        mechanism = fit.scm["mechanisms"].get(node, {})
        if mechanism.get("type") != "linear":
            continue
        params = mechanism.get("params", {})
        if params.get("encoded_parents"):
            count = len(params.get("coefficients", []))
            lines.append(f"{node}: linear in {count} one-hot encoded parent columns")
            continue
        lines.append(equation(node, mechanism["parents"], params["coefficients"],
                              params.get("intercept", 0.0)))
    return lines


def equation(node: str, parents: Sequence[str], coefficients: Sequence[float],
             intercept: float) -> str:
    terms = [f"{_tidy(c):.4f}·{p}" for p, c in zip(parents, coefficients, strict=True)]
    text = " + ".join(terms) or "0"
    intercept = _tidy(intercept)
    sign = "-" if intercept < 0 else "+"
    return f"{node} = {text} {sign} {abs(intercept):.4f}".replace("+ -", "- ")


def _tidy(value: float) -> float:
    """Round to the shown precision so -0.00001 reads as 0.0000, not -0.0000."""
    return round(value, 4) + 0.0


def validation_line(validation: Mapping[str, Any]) -> str:
    threshold = validation.get("threshold")
    mean = validation.get("mean_r2")
    rule = validation.get("rule", "mean")
    if mean is None:
        return f"no numeric node to score (threshold {threshold}) {OK} passed"
    verdict = f"{OK} passed" if validation.get("passed") else f"{FAIL} failed"
    comparison = "≥" if mean >= (threshold or 0) else "<"
    failed = validation.get("failed_nodes") or []
    below = f"; below threshold: {', '.join(failed)}" if failed else ""
    return f"mean R² {mean:.4f} {comparison} threshold {threshold} (rule: {rule}) {verdict}{below}"


def warnings_text(warnings: Sequence[Mapping[str, Any]]) -> str:
    if not warnings:
        return "none"
    return "\n".join(warning_text(w) for w in warnings)


def warning_text(warning: Mapping[str, Any]) -> str:
    node = f" ({warning['node']})" if warning.get("node") else ""
    return f"{warning.get('code', 'warning')}{node}: {warning.get('message', '')}"


def data_line(metadata: Mapping[str, Any]) -> str:
    parts = [f"{metadata.get('num_samples', '?')} rows"]
    if "num_train" in metadata:
        parts.append(f"{metadata['num_train']} train / {metadata.get('num_val', '?')} held out")
    if metadata.get("dropped_rows"):
        parts.append(f"{metadata['dropped_rows']} dropped (missing values)")
    if "quality" in metadata:
        parts.append(f"quality {metadata['quality']}")
    if "seed" in metadata:
        parts.append(f"seed {metadata['seed']}")
    return " · ".join(parts)


def timing_line(metadata: Mapping[str, Any]) -> str:
    text = f"fit {metadata.get('fitting_time_ms', '?')} ms in the worker"
    if metadata.get("cache_hit"):
        text += " (cache hit: an identical request was fitted before)"
    return text


def graph_line(graph: Mapping[str, Any]) -> str:
    """``X → Y, Y → Z`` (isolated nodes listed on their own)."""
    edges = [f"{a} → {b}" for a, b in graph.get("edges", [])]
    linked = {n for edge in graph.get("edges", []) for n in edge}
    isolated = [n for n in graph.get("nodes", []) if n not in linked]
    return ", ".join(edges + isolated) or NONE


# -- samples ---------------------------------------------------------------------------


def statistics_table(sample: SampleResult) -> str:
    """node, mean, std, q05, q50, q95 for numeric nodes; mode and frequencies for the others."""
    numeric = {n: s for n, s in sample.statistics.items() if "mean" in s}
    other = {n: s for n, s in sample.statistics.items() if "mean" not in s}
    parts = []
    if numeric:
        rows = [[node, *(num(stats.get(c)) for c in STAT_COLUMNS)]
                for node, stats in numeric.items()]
        parts.append(table(["node", *STAT_COLUMNS], rows))
    if other:
        rows = [[node, num(stats.get("mode")), frequencies(stats.get("frequencies", {}))]
                for node, stats in other.items()]
        parts.append(table(["node", "mode", "frequencies"], rows))
    return "\n\n".join(parts)


def frequencies(values: Mapping[str, float]) -> str:
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1%}" for k, v in ranked) or NONE


def sample_heading(sample: SampleResult) -> str:
    meta = sample.metadata
    interventions = ", ".join(intervention_text(i) for i in meta.get("interventions", []))
    what = f"{meta.get('kind', 'sample')}" + (f" under {interventions}" if interventions else "")
    return (f"{what}: {meta.get('num_samples', '?')} samples, seed {meta.get('seed', '?')}, "
            f"{meta.get('sampling_time_ms', '?')} ms")


def intervention_text(intervention: Mapping[str, Any]) -> str:
    node = intervention.get("node")
    if intervention.get("type") == "soft":
        op = "+" if intervention.get("transform") == "shift" else "×"
        return f"do({node} := {node} {op} {num(intervention.get('param'))})"
    value = intervention.get("value")
    return f"do({node} = {value if isinstance(value, str) else num(value)})"


def rows_table(columns: Mapping[str, Sequence[Any]], limit: int = 20) -> str:
    """Per-row values (counterfactual outcomes), at most ``limit`` rows."""
    names = list(columns)
    count = len(next(iter(columns.values()), []))
    rows = [[str(i), *(num(columns[n][i]) for n in names)] for i in range(min(count, limit))]
    more = f"\n  … {count - limit} more rows" if count > limit else ""
    return table(["row", *names], rows) + more


# -- errors ----------------------------------------------------------------------------


def error_text(exc: WorkerError) -> str:
    """One paragraph saying what went wrong and what to do about it."""
    if isinstance(exc, ValidationFailed):
        return validation_failure(exc)
    if isinstance(exc, InsufficientData):
        return (f"Insufficient data: the worker got {exc.num_samples} complete rows and needs "
                f"at least {exc.min_samples} (config.min_samples) to fit and hold out a "
                f"validation split. Provide more rows, or lower config.min_samples if you "
                f"accept a weaker check.")
    if isinstance(exc, InvalidParams):
        where = f" in {exc.field}" if exc.field else ""
        return f"Invalid request{where}: {exc.reason or exc.message}"
    if isinstance(exc, LimitExceeded):
        return f"The request is larger than the worker allows: {exc.message}"
    if isinstance(exc, UnsupportedQuery):
        return f"The worker cannot answer this query: {exc.message}"
    if isinstance(exc, RemoteError):
        return f"The worker answered with an error ({type(exc).__name__}): {exc.message}"
    if isinstance(exc, WorkerStartError):
        return f"The worker could not be started: {exc}\nRun `scm doctor` to see what is missing."
    if isinstance(exc, WorkerTimeout):
        return f"Timed out: {exc}. Raise --timeout, or lower the request's size or quality."
    if isinstance(exc, WorkerCrashed):
        return f"The worker crashed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def validation_failure(exc: ValidationFailed) -> str:
    threshold = exc.threshold
    rule = exc._data("rule") or "mean"
    mean = f"{exc.mean_r2:.4f}" if exc.mean_r2 is not None else NONE
    failed = ", ".join(exc.failed_nodes) or NONE
    head = (f"Validation failed: the mechanisms do not predict held-out rows well enough "
            f"(mean R² {mean}, threshold {threshold}, rule: {rule}; below threshold: {failed}). "
            f"The data may be too noisy for the graph, or a parent may be missing. "
            f"Rerun with --no-validate to get the model anyway, or lower config.r2_threshold.")
    rows = [[node, f"{score:.4f}", mark(threshold is None or score >= threshold)]
            for node, score in exc.r2_scores.items()]
    return head + "\n\n" + table(["node", "held-out R²", "pass"], rows)
