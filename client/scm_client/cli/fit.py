"""`scm fit` and `scm sample`: fit a request, print its summary or statistics of a sample."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import _format
from .common import (
    EXIT_OK,
    InputError,
    add_command,
    add_input_options,
    add_intervention_options,
    fit_config,
    fit_request,
    open_worker,
    positive_int,
    read_table,
    request_from_args,
)


def register(subparsers: Any) -> None:
    add_input_options(add_command(subparsers, "fit", run_fit,
                                  "fit an SCM and print its mechanisms and held-out scores"))
    sample = add_command(subparsers, "sample", run_sample,
                         "fit an SCM, then print statistics of samples drawn from it")
    add_input_options(sample)
    add_sample_options(sample)


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("observational", "interventional", "counterfactual"),
                        help="default: interventional if --do/--shift/--scale is given, "
                             "else observational")
    add_intervention_options(
        parser,
        do="set node X to a value (number, true/false or category); repeatable",
        shift="add a number to node Y's values; repeatable",
        scale="multiply node Y's values by a number; repeatable",
    )
    parser.add_argument("--num-samples", type=positive_int, default=1000, metavar="N",
                        help="draws for observational/interventional samples (default 1000)")
    parser.add_argument("--query-nodes", metavar="A,B", help="report only these nodes")
    parser.add_argument("--observed", type=Path, metavar="ROWS.json|ROWS.csv",
                        help="the factual rows for --kind counterfactual, or rows to intervene "
                             "on for --kind interventional (one sample per row; --num-samples "
                             "is then not used)")


def run_fit(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    with open_worker(args, warm_up=False) as worker:
        result = fit_request(worker, request, fit_config(request, args))
    print(json.dumps(result.raw, indent=2) if args.json else _format.fit_summary(result))
    return EXIT_OK


def run_sample(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    interventions = args.interventions or []
    kind = args.kind or ("interventional" if interventions else "observational")
    if kind == "counterfactual" and args.observed is None:
        raise InputError("--kind counterfactual needs --observed ROWS.json|ROWS.csv "
                         "(the factual rows)")
    observed = read_table(args.observed, "observed") if args.observed is not None else None
    query_nodes = ([n.strip() for n in args.query_nodes.split(",") if n.strip()]
                   if args.query_nodes else None)
    with open_worker(args, warm_up=False) as worker:
        fit = fit_request(worker, request, fit_config(request, args))
        sample = worker.sample(fit, kind, interventions, observed=observed,
                               num_samples=args.num_samples, query_nodes=query_nodes,
                               seed=args.seed, return_samples=args.json or observed is not None)
    if args.json:
        print(json.dumps(sample.plain(), indent=2))
        return EXIT_OK
    print(f"fitted {fit.model_id}: {fit.status}, mean R² {_format.num(fit.mean_r2, 4)} "
          f"{_format.mark(fit.passed)}")
    print(_format.sample_heading(sample) + "\n")
    print(_format.statistics_table(sample))
    if observed is not None and sample.samples:
        print(f"\n{kind} values per observed row\n" + _format.rows_table(sample.samples))
    return EXIT_OK
