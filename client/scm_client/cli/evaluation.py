"""`scm evaluate` and `scm falsify`: DoWhy's model evaluation and graph falsification.

`scm evaluate` fits REQUEST.json (or uses ``--model ID``) and evaluates it on ``--rows``
or the request's own traces; `scm falsify` tests the request's graph against its traces
with no fit. Both print tables, or the worker's result with ``--json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import _format
from ..results import EvaluateResult, FalsifyResult
from ..worker import Worker
from .common import (
    EXIT_OK,
    InputError,
    Request,
    add_command,
    add_input_options,
    fit_config,
    fit_request,
    open_worker,
    positive_int,
    read_table,
    request_from_args,
    seed_value,
)


def register(subparsers: Any) -> None:
    evaluate = add_command(
        subparsers, "evaluate", run_evaluate,
        "fit an SCM (or take --model) and evaluate it as DoWhy's evaluate_causal_model")
    add_input_options(evaluate)
    evaluate.add_argument("--model", metavar="ID",
                          help="evaluate this stored model (give --rows) instead of fitting")
    evaluate.add_argument("--store", metavar="DIR", help="with --model: the worker's store")
    evaluate.add_argument("--rows", type=Path, metavar="ROWS.json|ROWS.csv",
                          help="the rows to evaluate on (default: the request's traces)")
    evaluate.add_argument("--no-mechanisms", action="store_true",
                          help="skip DoWhy's 5-fold evaluation of each mechanism (CRPS, …)")
    evaluate.add_argument("--baselines", action="store_true",
                          help="compare each mechanism with DoWhy's baseline models (slow)")
    evaluate.add_argument("--no-kl", action="store_true",
                          help="skip the overall KL divergence of generated vs observed data")
    evaluate.add_argument("--invertibility", action="store_true",
                          help="test each additive-noise node's residual against its parents")
    evaluate.add_argument("--falsify", action="store_true",
                          help="also run DoWhy's graph falsification on the rows")
    add_falsify_options(evaluate, default_level="0.2")
    falsify = add_command(subparsers, "falsify", run_falsify,
                          "test a graph against its data (DoWhy's falsify_graph); no fit")
    add_falsify_input(falsify)
    add_falsify_options(falsify, default_level="0.05")


def add_falsify_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", nargs="?", type=Path, metavar="REQUEST.json",
                        help="a request file {graph, traces} (its config is not used)")
    parser.add_argument("--graph", type=Path, metavar="G.json",
                        help="instead of REQUEST.json: {nodes, edges} or a list of edges")
    parser.add_argument("--traces", type=Path, metavar="T.csv", help="with --graph: the data")
    parser.add_argument("--seed", type=seed_value, metavar="N", help="random seed")
    parser.add_argument("--json", action="store_true", help="print the raw result JSON")
    parser.set_defaults(config=None)


def add_falsify_options(parser: argparse.ArgumentParser, default_level: str) -> None:
    parser.add_argument("--max-permutations", type=positive_int, metavar="N",
                        help="permuted graphs to test at most (a graph of n nodes has n!)")
    parser.add_argument("--significance-level", type=float, metavar="ALPHA",
                        help=f"level for rejecting the graph (default {default_level})")


def run_evaluate(args: argparse.Namespace) -> int:
    if args.model and args.rows is None:
        raise InputError("--model needs --rows ROWS.json|ROWS.csv (the rows to evaluate on)")
    request = None if args.model else request_from_args(args)
    traces = read_table(args.rows, "rows") if args.rows is not None else request_traces(request)
    with open_worker(args, warm_up=False, store=args.store) as worker:
        model_id = args.model or fitted(worker, request, args)
        result = worker.evaluate(model_id, traces, **evaluate_options(args))
    print(json.dumps(result.raw, indent=2) if args.json else evaluation_text(result))
    return EXIT_OK


def request_traces(request: Request | None) -> Any:
    assert request is not None  # without --model there is a request
    return request.traces


def fitted(worker: Worker, request: Request | None, args: argparse.Namespace) -> str:
    assert request is not None
    return fit_request(worker, request, fit_config(request, args)).model_id


def evaluate_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "mechanisms": not args.no_mechanisms,
        "compare_mechanism_baselines": args.baselines,
        "overall_kl_divergence": not args.no_kl,
        "invertibility": args.invertibility,
        "falsify_graph": args.falsify,
        "seed": args.seed,
    }
    if args.max_permutations is not None:
        options["max_permutations"] = args.max_permutations
    if args.significance_level is not None:
        options["falsify_graph_significance_level"] = args.significance_level
    return options


def run_falsify(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    with open_worker(args, warm_up=False) as worker:
        result = worker.falsify(request.graph, request.traces,
                                max_permutations=args.max_permutations,
                                significance_level=args.significance_level, seed=args.seed)
    print(json.dumps(result.raw, indent=2) if args.json else falsification_text(result))
    return EXIT_OK


# -- tables ------------------------------------------------------------------------------


def evaluation_text(result: EvaluateResult) -> str:
    metadata = result.raw["metadata"]
    heading = (f"evaluated {result.raw['model_id']} on {metadata['num_samples']} rows "
               f"(seed {metadata['seed']})")
    parts = [heading, "", "the fitted model on these rows",
             model_table(result), "  " + _format.validation_line(result.raw)]
    if result.mechanisms is not None:
        parts += ["", "DoWhy's evaluation of the mechanisms (refitted in 5 folds)",
                  mechanisms_table(result.mechanisms)]
    if result.overall_kl_divergence is not None:
        parts += ["", "overall KL divergence, generated vs observed: "
                  + _format.num(result.overall_kl_divergence, 4)]
    if result.invertibility is not None:
        parts += ["", "invertibility (residual independent of the parents)",
                  invertibility_table(result.invertibility)]
    if result.falsification is not None:
        parts += ["", falsification_text(result.falsification)]
    return "\n".join(parts)


def model_table(result: EvaluateResult) -> str:
    rows = [[node, _format.num(s["r2"], 4), _format.num(s["mse"], 4), _format.num(s["nmse"], 4)]
            for node, s in result.nodes.items()]
    f1 = result.raw.get("f1_scores", {})
    rows += [[node, _format.NONE, _format.NONE, _format.NONE, _format.num(accuracy, 4),
              _format.num(f1.get(node), 4)] for node, accuracy in result.raw["accuracy"].items()]
    headers = ["node", "R²", "MSE", "NMSE"] + (["accuracy", "F1"] if f1 else [])
    return _format.table(headers, [row + [_format.NONE] * (len(headers) - len(row))
                                   for row in rows])


def mechanisms_table(mechanisms: dict[str, dict[str, Any]]) -> str:
    metrics = ("crps", "mse", "nmse", "r2", "f1", "kl_divergence")
    rows = [[node, "root" if m["root"] else "", *(_format.num(m[k], 4) for k in metrics),
             baselines_cell(m.get("baselines"))] for node, m in mechanisms.items()]
    with_baselines = any(m.get("baselines") for m in mechanisms.values())
    headers = ["node", "", "CRPS", "MSE", "NMSE", "R²", "F1", "KL"]
    return _format.table(headers + (["baselines"] if with_baselines else []),
                         [row if with_baselines else row[:-1] for row in rows])


def baselines_cell(baselines: dict[str, Any] | None) -> str:
    if not baselines:
        return ""
    better, total = baselines["significantly_better"], baselines["total"]
    if not better:
        return f"as good as all {total}"
    return (f"{better} of {total} better; best {baselines['best_model']} "
            f"(CRPS {_format.num(baselines['best_crps'], 3)})")


def invertibility_table(invertibility: dict[str, dict[str, Any]]) -> str:
    rows = [[node, _format.num(t["p_value"], 4), "rejected" if t["rejected"] else "not rejected"]
            for node, t in invertibility.items()]
    return _format.table(["node", "p-value", "assumption"], rows)


def falsification_text(result: FalsifyResult) -> str:
    """DoWhy's verdict in a line, then its figures and the given graph's tests."""
    raw = result.raw
    if result.falsified is None:
        verdict = "cannot be evaluated: the graph implies no independence to test"
    else:
        verdict = (f"{'REJECTED' if result.falsified else 'not rejected'} "
                   f"(p-value {_format.num(result.p_value, 3)}, significance level "
                   f"{result.significance_level:g}"
                   + ("" if result.falsifiable else "; not falsifiable: too many permutations "
                      "share its equivalence class") + ")")
    violations = (f"{result.violations} of {result.tests} tests "
                  f"(permutations: {violations_range(result)})")
    same_class = raw["equivalence_class"]
    in_class = (f"{same_class['permutations']} of {result.permutations} permutations "
                f"(p-value {_format.num(same_class['p_value'], 3)})")
    pairs = [
        ("permutations tested", f"{result.permutations} (at most {raw['max_permutations']})"),
        ("local-Markov violations", violations),
        ("equivalence class", in_class),
    ]
    lines = ["graph falsification: " + verdict, _format.key_values(pairs, indent=2)]
    if raw["tests"]:
        rows = [[t["node"], t["non_descendant"], _format.num(t["p_value"], 4),
                 "violated" if t["violated"] else "holds"] for t in raw["tests"]]
        lines += ["  the given graph's tests (node ⊥ other | node's parents)",
                  _format.table(["node", "other", "p-value", "independence"], rows, indent=4)]
    return "\n".join(lines)


def violations_range(result: FalsifyResult) -> str:
    counts = result.permutation_violations
    if not counts:
        return _format.NONE
    return f"{min(counts)}–{max(counts)}, mean {sum(counts) / len(counts):.1f}"
