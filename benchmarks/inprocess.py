"""In-process DoWhy baselines, run by the WORKER interpreter (Python 3.11, DoWhy installed).

    python benchmarks/inprocess.py COMMAND --out FILE [options]

Commands (each writes one JSON object to ``--out``; progress goes to stderr):

``dowhy-fit --data dag --seeds 101 102``
    DoWhy's own pipeline on each seed: split, ``gcm.auto.assign_causal_mechanisms``
    (quality GOOD) and ``gcm.fit`` on the training rows, held-out scoring, refit on all
    rows. The split and the scoring are scm_worker's own functions; the worker runs the
    same stages node by node in parallel tasks, with DoWhy's selection cut short for
    candidates that cannot win.
``worker-fit --data dag --seeds 101 102``
    ``scm_worker.engine.fitting.fit_model`` called in this process (no protocol): the
    in-process time of exactly what the worker runs.
``sequential --data small --seed-base 1000``
    The DoWhy pipeline on every graph of a data set, one after another, in this process.
``contention --data chain --repeats 3``
    The DoWhy pipeline on the chain, alone and then beside one busy-loop process.
``task-bytes --data dag --seeds 101``
    What each non-root node's task pickles on its way to a joblib process: the
    ``scm_worker.engine.fitting.node_tasks`` of the fit's split, their pickled sizes, and the
    time to pickle and unpickle them all.
``sample --data chain --seed 5 --repeats 50``
    ``gcm.interventional_samples`` (do(X := 1), 1000 samples) on the chain model.

Every command first runs one small untimed fit, so DoWhy is imported and joblib's
worker processes are started before the clock runs (a warm in-process baseline).
DoWhy draws its randomness from numpy's global state, so every timed computation is
preceded by ``set_random_seed``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen


def log(message: str) -> None:
    print(f"[inprocess {os.getpid()}] {message}", file=sys.stderr, flush=True)


def load(request: dict[str, Any]) -> tuple[Any, Any]:
    """The request as the worker sees it after parsing: a Graph and a Frame."""
    from scm_worker.checks import parse_graph, parse_traces
    from scm_worker.engine.frames import to_frame
    from scm_worker.limits import Limits

    graph = parse_graph(request["graph"], Limits())
    return graph, to_frame(parse_traces(request["traces"], graph.nodes, Limits()))


def dowhy_pipeline(graph: Any, frame: Any, seed: int, quality: str = "GOOD") -> dict[str, Any]:
    """Split, DoWhy's assign + fit on train, score held-out, refit on all; timed by stage."""
    from dowhy import gcm
    from dowhy.graph import get_ordered_predecessors
    from scm_worker.checks import FitConfig
    from scm_worker.engine import scoring
    from scm_worker.engine.fitting import (
        QUALITY,
        predict_non_roots,
        score_predictions,
        split_rows,
        to_networkx,
    )
    from scm_worker.engine.mechanisms import describe

    config = FitConfig(seed=seed, quality=quality)
    t0 = time.perf_counter()
    train, val = split_rows(frame.data, config, seed)
    gcm.util.general.set_random_seed(seed)
    scm = gcm.InvertibleStructuralCausalModel(to_networkx(graph))
    t1 = time.perf_counter()
    gcm.auto.assign_causal_mechanisms(scm, train, QUALITY[quality])
    t2 = time.perf_counter()
    gcm.fit(scm, train)
    t3 = time.perf_counter()
    scores = score_predictions(predict_non_roots(scm, val), val, frame.kinds)
    t4 = time.perf_counter()
    gcm.util.general.set_random_seed(seed)
    gcm.fit(scm, frame.data)
    t5 = time.perf_counter()
    verdict = scoring.judge(scores.r2, config.r2_threshold, config.r2_rule)
    models = {
        node: describe(
            scm.causal_mechanism(node), get_ordered_predecessors(scm.graph, node), frame.kinds, node
        ).get("model", "empirical")
        for node in graph.nodes
    }
    return {
        "seed": seed,
        "seconds": t5 - t0,
        "stages": {
            "split": t1 - t0,
            "assign": t2 - t1,
            "fit_train": t3 - t2,
            "score": t4 - t3,
            "refit_all": t5 - t4,
        },
        "mean_r2": verdict.mean_r2,
        "r2_scores": scores.r2,
        "models": models,
    }


def warm_up() -> None:
    """One small untimed fit: imports DoWhy and starts joblib's processes."""
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    started = time.perf_counter()
    request = datagen.chain(n_rows=300, seed=0)
    dowhy_pipeline(*load(request), seed=0)
    log(f"warm-up fit done in {time.perf_counter() - started:.2f}s")


def cmd_dowhy_fit(args: argparse.Namespace) -> dict[str, Any]:
    request = datagen.case_data(args.data)
    graph, frame = load(request)
    runs = []
    for seed in args.seeds:
        run = dowhy_pipeline(graph, frame, seed)
        log(
            f"dowhy fit {args.data} seed {seed}: {run['seconds']:.2f}s mean R² {run['mean_r2']:.4f}"
        )
        runs.append(run)
    return {"checksum": datagen.checksum(request), "runs": runs}


def cmd_worker_fit(args: argparse.Namespace) -> dict[str, Any]:
    from scm_worker.checks import FitConfig
    from scm_worker.engine.fitting import fit_model

    request = datagen.case_data(args.data)
    graph, frame = load(request)
    n_jobs = os.cpu_count() or 1  # the worker's default (no --threads)
    runs = []
    for seed in args.seeds:
        started = time.perf_counter()
        model = fit_model(graph, frame, FitConfig(seed=seed, validate_r2=False), n_jobs)
        seconds = time.perf_counter() - started
        mean_r2 = model.summary["validation"]["mean_r2"]
        log(
            f"scm_worker.fit_model in-process {args.data} seed {seed}: {seconds:.2f}s mean R² {mean_r2:.4f}"
        )
        runs.append(
            {
                "seed": seed,
                "seconds": seconds,
                "mean_r2": mean_r2,
                "fitting_time_ms": model.summary["metadata"]["fitting_time_ms"],
            }
        )
    return {"checksum": datagen.checksum(request), "n_jobs": n_jobs, "runs": runs}


def cmd_sequential(args: argparse.Namespace) -> dict[str, Any]:
    requests = datagen.case_data(args.data)
    loaded = [load(request) for request in requests]
    started = time.perf_counter()
    runs = []
    for index, (graph, frame) in enumerate(loaded):
        runs.append(dowhy_pipeline(graph, frame, args.seed_base + index))
    seconds = time.perf_counter() - started
    log(f"sequential DoWhy over {len(loaded)} graphs: {seconds:.2f}s")
    return {
        "checksum": datagen.checksum(requests),
        "seconds": seconds,
        "per_graph": [run["seconds"] for run in runs],
        "mean_r2": [run["mean_r2"] for run in runs],
    }


def cmd_sample(args: argparse.Namespace) -> dict[str, Any]:
    from dowhy import gcm
    from scm_worker.checks import FitConfig
    from scm_worker.engine.fitting import fit_model

    request = datagen.case_data(args.data)
    graph, frame = load(request)
    model = fit_model(
        graph, frame, FitConfig(seed=args.seed, validate_r2=False), os.cpu_count() or 1
    )
    node = graph.nodes[0]
    times = []
    for i in range(args.repeats):
        started = time.perf_counter()
        gcm.util.general.set_random_seed(args.seed + i)
        gcm.interventional_samples(model.scm, {node: lambda _x: 1.0}, num_samples_to_draw=1000)
        times.append(time.perf_counter() - started)
    log(f"in-process interventional_samples p50 {statistics.median(times) * 1000:.2f} ms")
    return {"checksum": datagen.checksum(request), "times": times}


def cmd_task_bytes(args: argparse.Namespace) -> dict[str, Any]:
    import pickle

    from scm_worker.checks import FitConfig
    from scm_worker.engine.fitting import node_tasks, split_rows, to_networkx

    request = datagen.case_data(args.data)
    graph, frame = load(request)
    seed = args.seeds[0]
    train, val = split_rows(frame.data, FitConfig(seed=seed), seed)
    tasks = list(node_tasks(to_networkx(graph), train, val, frame.data, seed))
    sizes = []
    started = time.perf_counter()
    for task in tasks:
        pickled = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(pickled)
        sizes.append(len(pickled))
    seconds = time.perf_counter() - started
    return {"checksum": datagen.checksum(request), "bytes": sizes, "seconds": seconds}


def cmd_contention(args: argparse.Namespace) -> dict[str, Any]:
    """The DoWhy pipeline on its own, then beside one busy-loop process (as run.py's case 6)."""
    import subprocess

    request = datagen.case_data(args.data)
    graph, frame = load(request)

    def runs() -> list[float]:
        return [dowhy_pipeline(graph, frame, seed=1)["seconds"] for _ in range(args.repeats)]

    quiet = runs()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = runs()
    finally:
        hog.kill()
        hog.wait()
    log(
        f"contention: quiet {statistics.median(quiet):.2f}s, beside a busy process {statistics.median(busy):.2f}s"
    )
    return {"checksum": datagen.checksum(request), "quiet_s": quiet, "busy_s": busy}


COMMANDS = {
    "dowhy-fit": cmd_dowhy_fit,
    "worker-fit": cmd_worker_fit,
    "sequential": cmd_sequential,
    "sample": cmd_sample,
    "contention": cmd_contention,
    "task-bytes": cmd_task_bytes,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default="dag", choices=("chain", "dag", "small"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[101])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    warm_up()
    result = COMMANDS[args.command](args)
    import dowhy

    result["python"] = sys.version.split()[0]
    result["dowhy"] = dowhy.__version__
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
