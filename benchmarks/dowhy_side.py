"""The one in-process DoWhy harness: a long-lived JSON-lines helper under the WORKER interpreter.

    python benchmarks/dowhy_side.py < commands > answers     # what ``DoWhySide`` starts

Every suite's baseline is DoWhy called directly, in a warm process of the worker's own
interpreter (Python 3.11, the pinned DoWhy stack). One long-lived helper rather than a
process per measure, so the driver can interleave single timed calls here with single
worker calls (``rounds.paired``) and both sides meet the same load. One JSON command per
line on stdin, one JSON answer per line on stdout (fd 1 is pointed at stderr first, so
nothing DoWhy or tqdm prints can corrupt the stream). Commands (``op``):

``fit``      DoWhy's pipeline on ``request`` with ``seed``/``quality``: the worker's seeded
             split, ``gcm.auto.assign_causal_mechanisms``, ``gcm.fit`` on the training rows,
             held-out R², refit on all rows → ``seconds``, ``mean_r2``, ``r2_scores``.
``batch``    ``fit`` over ``requests`` one after another (seed ``seed_base + i``) → ``seconds``.
``setup``    fit ``case`` with ``scm_worker.engine.fitting.fit_model`` (the worker's model for
             the same seeded request) for the queries → ``summary``.
``query``    DoWhy's own function for ``query`` on that model, the worker's knobs, DoWhy's RNG
             seeded with ``seed`` → ``seconds``.
``plot``     draw ``points`` (``{label: [[x, y], …]}``) to the PNG ``path``, x on a log scale.

DoWhy runs on sklearn's own gradient-boosting grower here (``SCM_LEAN_GROWER=0``): a
baseline is DoWhy as a user of it runs it. The driver side (``DoWhySide``) is standard
library only, so the client interpreter imports this file too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent


class DoWhySide:
    """The driver's end of the helper: one call, one answer; an error answer raises."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen([python, str(BENCH / "dowhy_side.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=BENCH.parent)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"dowhy_side.py exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"dowhy_side.py: {answer['error']}")
        return answer

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)

    def __enter__(self) -> DoWhySide:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- the helper's side (worker interpreter) ---------------------------------------------


def load(request: dict[str, Any]) -> tuple[Any, Any]:
    """The request as the worker parses it: a Graph and a Frame."""
    from scm_worker.checks import parse_graph, parse_traces
    from scm_worker.engine.frames import to_frame
    from scm_worker.limits import Limits

    graph = parse_graph(request["graph"], Limits())
    return graph, to_frame(parse_traces(request["traces"], graph.nodes, Limits()))


def dowhy_fit(request: dict[str, Any], seed: int, quality: str = "GOOD") -> dict[str, Any]:
    """Split, DoWhy's assign + fit on train, score held-out, refit on all: timed whole."""
    from dowhy import gcm
    from scm_worker.checks import FitConfig
    from scm_worker.engine import scoring
    from scm_worker.engine.fitting import (QUALITY, predict_non_roots, score_predictions,
                                           split_rows, to_networkx)

    graph, frame = load(request)
    config = FitConfig(seed=seed, quality=quality)
    started = time.perf_counter()
    train, val = split_rows(frame.data, config, seed)
    gcm.util.general.set_random_seed(seed)
    scm = gcm.InvertibleStructuralCausalModel(to_networkx(graph))
    gcm.auto.assign_causal_mechanisms(scm, train, QUALITY[quality])
    gcm.fit(scm, train)
    scores = score_predictions(predict_non_roots(scm, val), val, frame.kinds)
    gcm.util.general.set_random_seed(seed)
    gcm.fit(scm, frame.data)
    seconds = time.perf_counter() - started
    verdict = scoring.judge(scores.r2, config.r2_threshold, config.r2_rule)
    return {"seconds": seconds, "mean_r2": verdict.mean_r2, "r2_scores": scores.r2}


def batch(requests: list[dict[str, Any]], seed_base: int) -> dict[str, Any]:
    started = time.perf_counter()
    for index, request in enumerate(requests):
        dowhy_fit(request, seed_base + index)
    return {"seconds": time.perf_counter() - started}


def plot(points: dict[str, list[list[float]]], path: str, title: str, x: str = "fit time (s, log)",
         y: str = "held-out mean R²", log_y: bool = False) -> dict[str, Any]:
    """A scatter per label on a log x axis (and log y if asked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, xy in points.items():
        axes.scatter([p[0] for p in xy], [p[1] for p in xy], label=label, alpha=0.7)
    axes.set(xscale="log", yscale="log" if log_y else "linear", xlabel=x, ylabel=y, title=title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return {"path": path}


class Serve:
    """The helper's state: the model the queries run on (``setup``)."""

    def __init__(self) -> None:
        self.case: Any = None

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.pop("op")
        if op == "fit":
            return dowhy_fit(**command)
        if op == "batch":
            return batch(**command)
        if op == "plot":
            return plot(**command)
        if op == "setup":
            from dowhy_queries import Case

            self.case = Case(command["case"])
            return {"summary": self.case.summary}
        if op == "query" and self.case is not None:
            from dowhy_queries import timed

            return {"seconds": timed(self.case, command["query"], command["seed"])}
        return {"error": f"unknown or premature command {op!r}"}


def warm_up() -> None:
    """One small untimed fit: imports DoWhy and starts joblib's processes (a warm baseline)."""
    import datagen
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    dowhy_fit(datagen.chain(n_rows=300, seed=0), seed=0)


def serve(out: TextIO) -> None:
    state = Serve()
    for line in sys.stdin:
        try:
            reply = state.answer(json.loads(line))
        except Exception as error:  # noqa: BLE001 - the driver raises it with its message
            reply = {"error": f"{type(error).__name__}: {error}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main() -> int:
    os.environ["SCM_LEAN_GROWER"] = "0"  # inherited by joblib's processes
    sys.path.insert(0, str(BENCH))
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    warm_up()
    import dowhy

    out.write(json.dumps({"python": sys.version.split()[0], "dowhy": dowhy.__version__}) + "\n")
    out.flush()
    try:
        serve(out)
    finally:  # joblib's loky processes (arrow_strength starts them) must not outlive us
        loky = sys.modules.get("joblib.externals.loky.reusable_executor")
        executor = getattr(loky, "_executor", None) if loky else None
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
