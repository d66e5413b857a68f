"""`scm effect|strength|influence|anomaly|change`: causal questions on a fitted model.

Each command fits REQUEST.json (or the --graph/--traces pair) with the request's config
— or uses a stored model with ``--model ID`` — then asks its question and prints a table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import _format
from ..results import AnomalyResult, Attribution
from ..worker import Worker
from .common import (
    Handler,
    add_command,
    add_input_options,
    fit_config,
    fit_request,
    hard_intervention,
    open_worker,
    read_table,
    request_from_args,
)


def register(subparsers: Any) -> None:
    def question(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        parser = add_command(subparsers, name, handler, help_)
        add_input_options(parser)
        parser.add_argument("--model", metavar="ID",
                            help="use this stored model instead of fitting a request")
        parser.add_argument("--store", metavar="DIR",
                            help="with --model: the worker's store directory")
        parser.add_argument("--target", required=True, help="the node the question is about")
        parser.add_argument("--confidence", type=float, metavar="LEVEL",
                            help="add an interval to every value, e.g. 0.95 (a bootstrap)")
        parser.add_argument("--num-bootstrap", type=int, metavar="N",
                            help="with --confidence: the bootstrap's replicates (default 20)")
        parser.add_argument("--no-refit", dest="refit", action="store_false",
                            help="with --confidence: ask again on the fitted model instead of "
                            "refitting it on resampled rows (sampling noise only)")
        return parser

    effect = question("effect", run_effect, "average causal effect of interventions on a target")
    effect.add_argument("--do", dest="alternative", action="append", type=hard_intervention,
                        required=True, metavar="X=1", help="the alternative intervention(s)")
    effect.add_argument("--ref", dest="reference", action="append", type=hard_intervention,
                        default=[], metavar="X=0",
                        help="the reference intervention(s) (default: none, i.e. observational)")
    question("strength", run_strength, "arrow strength of each parent of a target")
    question("influence", run_influence,
             "intrinsic causal influence of every upstream node on a target")
    anomaly = question("anomaly", run_anomaly, "anomaly scores and attribution of anomalous rows")
    anomaly.add_argument("--rows", type=Path, required=True, metavar="ROWS.json|ROWS.csv")
    change = question("change", run_change,
                      "attribute a change in a target's distribution to nodes")
    change.add_argument("--old", type=Path, required=True, metavar="OLD.json|OLD.csv")
    change.add_argument("--new", type=Path, required=True, metavar="NEW.json|NEW.csv")
    change.add_argument("--measure", choices=("mean", "std", "kl"), default="mean")


def model_and_worker(args: argparse.Namespace) -> tuple[Worker, str]:
    """A started worker and the model id to question (fitted now unless --model is given)."""
    worker = open_worker(args, warm_up=False, store=args.store)
    if args.model:
        return worker, str(args.model)
    request = request_from_args(args)
    fit = fit_request(worker, request, fit_config(request, args))
    return worker, fit.model_id


def _ask(args: argparse.Namespace, ask: Callable[[Worker, str], Any],
         show: Callable[[Any], str]) -> int:
    worker, model_id = model_and_worker(args)
    with worker:
        answer = ask(worker, model_id)
    print(json.dumps(answer.raw, indent=2) if args.json else show(answer))
    return 0


def bootstrap(args: argparse.Namespace) -> dict[str, Any]:
    """The question's bootstrap options (Worker's ``confidence``/``num_bootstrap``/``refit``)."""
    return {"confidence": args.confidence, "num_bootstrap": args.num_bootstrap,
            "refit": args.refit}


def estimate(value: Any, interval: Any, places: int = 4) -> str:
    """A value with its interval beside it when it has one: ``0.42 [0.31, 0.55]``."""
    shown = _format.num(value, places)
    if interval is None:
        return shown
    return f"{shown} [{_format.num(interval[0], places)}, {_format.num(interval[1], places)}]"


def run_effect(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.effect(m, args.target, args.alternative, args.reference,
                                            seed=args.seed, **bootstrap(args)),
                lambda r: f"effect on {r.target}: {estimate(r.effect, r.interval)}"
                + (f"  ({interval_rule(args.confidence)})" if r.interval else ""))


def interval_rule(confidence: float) -> str:
    """What ``[lo, hi]`` is: DoWhy's ``confidence_intervals`` bounds, the replicates'
    (1 − confidence) and confidence percentiles (so 0.95 spans the 5th to the 95th)."""
    return (f"confidence {confidence:g}: the bootstrap's {(1 - confidence) * 100:g}th to "
            f"{confidence * 100:g}th percentiles, DoWhy's rule")


def run_strength(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.arrow_strength(m, args.target, seed=args.seed,
                                                    **bootstrap(args)),
                lambda r: ranked_table(r, "arrow strength", f"arrows into {r.target}"))


def run_influence(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.influence(m, args.target, seed=args.seed, **bootstrap(args)),
                lambda r: ranked_table(r, "influence", f"intrinsic causal influence on {r.target}"))


def run_anomaly(args: argparse.Namespace) -> int:
    rows = read_table(args.rows, "rows")
    return _ask(args, lambda w, m: w.anomaly(m, args.target, rows, seed=args.seed,
                                             **bootstrap(args)), anomaly_table)


def run_change(args: argparse.Namespace) -> int:
    old, new = read_table(args.old, "old"), read_table(args.new, "new")
    return _ask(args, lambda w, m: w.distribution_change(m, args.target, old, new, seed=args.seed,
                                                         measure=args.measure, **bootstrap(args)),
                lambda r: ranked_table(r, f"attribution ({args.measure})",
                                       f"why {r.target} changed"))


def ranked_table(answer: Attribution, column: str, title: str) -> str:
    """Nodes by decreasing absolute value, each with its interval when one was asked for."""
    intervals = answer.intervals or {}
    rows = [[node, estimate(value, intervals.get(node))] for node, value in answer.ranked()]
    return f"{title}\n" + _format.table(["node", column], rows)


def anomaly_table(answer: AnomalyResult) -> str:
    nodes = list(answer.attributions)
    count = len(next(iter(answer.attributions.values()), []))
    intervals = answer.intervals or {}

    def cell(node: str, row: int) -> str:
        per_row = intervals.get(node)
        return estimate(answer.attributions[node][row], per_row[row] if per_row else None, 3)

    rows = [[i, answer.main_cause(i), *(cell(n, i) for n in nodes)] for i in range(count)]
    return (f"attribution of {answer.target}'s anomaly, per row\n"
            + _format.table(["row", "main cause", *nodes], rows))
