"""`scm report`: fit a request (or take a stored model), render it as HTML or SVG, print the path.

    scm report REQUEST.json --out report.html [--do X=5 ...]
    scm report --model m-0123456789abcdef --out report.svg

A request is fitted with seed 42 (``--seed`` overrides it) and its own config. A model
that fails the R² rule is still rendered — the report shows which nodes fail — with a
note on stderr. ``--do``/``--shift``/``--scale`` add histograms of an interventional
sample beside an observational one with the same seed; ``--samples`` draws observational
histograms only. ``--model`` renders a model from the worker's store (fitted earlier
with ``config.persist: true``).

``register(subparsers)`` adds the command to the `scm` parser (its handler is ``run``);
``write_demo_report`` is what `scm demo` calls to leave a report behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import ValidationFailed
from ..results import FitResult
from ..worker import REPORT_FORMATS, Worker
from .common import (
    EXIT_OK,
    InputError,
    Request,
    add_command,
    add_intervention_options,
    fit_request,
    load_request,
    open_worker,
    positive_int,
    seed_value,
)

SEED = 42
NUM_SAMPLES = 1000
DO_VALUE = 5

HELP = "fit an SCM (or take a stored model) and write an HTML or SVG report of it"
DESCRIPTION = HELP + """.

The report is one self-contained file (no network, scripts or fonts): the graph laid out
by topological layers, each node with its mechanism and held-out R² (accuracy for
categorical nodes) coloured by pass/fail, linear edges with their coefficients, the
validation figures and warnings, and with --do/--shift/--scale (or --samples) histograms
of the sampled distributions beside observational ones. The file's path is printed."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `report` to the `scm` command's subparsers; its handler is ``run``."""
    parser = add_command(subparsers, "report", run, HELP, DESCRIPTION)
    parser.add_argument("request", nargs="?", type=Path, metavar="REQUEST.json",
                        help="a request file {graph, traces, config}, as in tests/fixtures/")
    parser.add_argument("--model", metavar="ID",
                        help="instead of REQUEST.json: a model in the worker's store "
                             "(fitted with persist: true)")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="report.html",
                        help="where to write the report (.html or .svg)")
    parser.add_argument("--format", choices=("html", "svg"), help="default: from --out's suffix")
    parser.add_argument("--seed", type=seed_value, metavar="N",
                        help=f"fit and sampling seed (default {SEED})")
    add_intervention_options(
        parser,
        do="histograms under do(X = 5) beside observational ones; repeatable",
        shift="the same under Y := Y + 1.0; repeatable",
        scale="the same under Y := Y × 2.0; repeatable",
    )
    parser.add_argument("--samples", action="store_true",
                        help="without interventions: histograms of an observational sample")
    parser.add_argument("--num-samples", type=positive_int, default=NUM_SAMPLES, metavar="N",
                        help=f"draws per sample (default {NUM_SAMPLES})")
    parser.add_argument("--query-nodes", metavar="A,B",
                        help="histograms for these nodes only (default: all)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Fit or look up the model, render it, write the file, print its path."""
    out: Path = args.out
    fmt = args.format or REPORT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {out}: cannot tell the format from the suffix; "
                             f"use a .html or .svg file name, or --format html|svg")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: the directory {out.parent} does not exist")
    if (args.request is None) == (args.model is None):
        raise InputError("give either REQUEST.json or --model ID")
    request = load_request(args.request) if args.request is not None else None
    seed = SEED if args.seed is None else args.seed
    samples = sample_spec(args.interventions or [], args.samples, args.num_samples,
                          args.query_nodes, seed)
    with open_worker(args, warm_up=False) as worker:
        model_id = args.model if request is None else fit_for_report(worker, request, seed)
        path = worker.report(model_id, out, format=fmt, samples=samples)
    print(path)
    return EXIT_OK


def sample_spec(interventions: list[dict[str, Any]], observational: bool, num_samples: int,
                query_nodes: str | None, seed: int) -> dict[str, Any] | None:
    """The report's ``samples`` request, or None when no histograms were asked for."""
    if not interventions and not observational:
        return None
    spec: dict[str, Any] = {
        "kind": "interventional" if interventions else "observational",
        "interventions": interventions,
        "num_samples": num_samples,
        "seed": seed,
    }
    if query_nodes:
        spec["query_nodes"] = [name.strip() for name in query_nodes.split(",") if name.strip()]
    return spec


def fit_for_report(worker: Worker, request: Request, seed: int) -> str:
    """Fit the request with ``seed``; a model that fails validation is still reported."""
    try:
        return fit_request(worker, request, {**request.config, "seed": seed}).model_id
    except ValidationFailed as exc:
        if not exc.model_id:
            raise
        print(f"scm: note: {request.name}: validation failed (mean R² "
              f"{'—' if exc.mean_r2 is None else f'{exc.mean_r2:.3f}'} < {exc.threshold}); "
              f"the report shows the failing nodes", file=sys.stderr)
        return str(exc.model_id)


# -- scm demo --------------------------------------------------------------------------


def write_demo_report(worker: Worker, fit_result: FitResult, out_dir: str | Path, *,
                      name: str | None = None) -> Path:
    """Write ``out_dir/report-NAME.html`` for a fitted model, with do(root = 5) histograms.

    The intervened root is the first one that feeds a linear mechanism with per-parent
    coefficients (so it is numeric); a model without one gets observational histograms.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    root = numeric_root(fit_result)
    interventions = [{"type": "hard", "node": root, "value": DO_VALUE}] if root is not None else []
    samples = sample_spec(interventions, True, NUM_SAMPLES, None, SEED)
    path = directory / f"report-{name or fit_result.model_id}.html"
    return worker.report(fit_result, path, samples=samples)


def numeric_root(fit: FitResult) -> str | None:
    mechanisms = fit.scm["mechanisms"]
    linear_parents = {
        parent
        for mechanism in mechanisms.values()
        if mechanism.get("type") == "linear"
        and not mechanism.get("params", {}).get("encoded_parents")
        for parent in mechanism.get("parents", [])
    }
    for node in fit.scm["graph"]["nodes"]:
        if not mechanisms[node].get("parents") and node in linear_parents:
            return str(node)
    return None
