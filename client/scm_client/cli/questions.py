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
from ..results import Attribution
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
        return parser

    effect = question("effect", run_effect, "average causal effect of interventions on a target")
    effect.add_argument("--do", dest="alternative", action="append", type=hard_intervention,
                        required=True, metavar="X=1", help="the alternative intervention(s)")
    effect.add_argument("--ref", dest="reference", action="append", type=hard_intervention,
                        default=[], metavar="X=0",
                        help="the reference intervention(s) (default: none, i.e. observational)")
    effect.add_argument("--confidence", type=float, metavar="LEVEL",
                        help="add an interval, e.g. 0.95")
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


def run_effect(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.effect(m, args.target, args.alternative, args.reference,
                                            confidence=args.confidence, seed=args.seed),
                lambda r: f"effect on {r.target}: {_format.num(r.effect, 4)}"
                + (f"  ({args.confidence:.0%} interval {_format.num(r.interval[0], 4)} … "
                   f"{_format.num(r.interval[1], 4)})" if r.interval else ""))


def run_strength(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.arrow_strength(m, args.target, seed=args.seed),
                lambda r: ranked_table(r, "arrow strength", f"arrows into {r.target}"))


def run_influence(args: argparse.Namespace) -> int:
    return _ask(args, lambda w, m: w.influence(m, args.target, seed=args.seed),
                lambda r: ranked_table(r, "influence", f"intrinsic causal influence on {r.target}"))


def run_anomaly(args: argparse.Namespace) -> int:
    rows = read_table(args.rows, "rows")
    return _ask(args, lambda w, m: w.anomaly(m, args.target, rows, seed=args.seed), anomaly_table)


def run_change(args: argparse.Namespace) -> int:
    old, new = read_table(args.old, "old"), read_table(args.new, "new")
    return _ask(args, lambda w, m: w.distribution_change(m, args.target, old, new, seed=args.seed,
                                                         measure=args.measure),
                lambda r: ranked_table(r, f"attribution ({args.measure})",
                                       f"why {r.target} changed"))


def ranked_table(answer: Attribution, column: str, title: str) -> str:
    rows = [[node, _format.num(value, 4)] for node, value in answer.ranked()]
    return f"{title}\n" + _format.table(["node", column], rows)


def anomaly_table(answer: Any) -> str:
    nodes = list(answer.attributions)
    count = len(next(iter(answer.attributions.values()), []))
    rows = [[i, answer.main_cause(i), *(_format.num(answer.attributions[n][i], 3) for n in nodes)]
            for i in range(count)]
    return (f"attribution of {answer.target}'s anomaly, per row\n"
            + _format.table(["row", "main cause", *nodes], rows))
