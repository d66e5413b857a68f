"""The lean tree grower against the real worker: switched off, nothing a client sees changes.

Two workers fit the same nonlinear traces, one with ``SCM_LEAN_GROWER=0`` (sklearn's own
grower), one as shipped, in their joblib processes: the fits, their scores and their
seeded draws must be equal. tests/worker/test_lean_grower.py holds the byte-level checks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from scm_client import Worker
from support.fits import without_run_details
from support.worker_env import FAST_ARGS, JOBLIB_THREADS

GRAPH = {"nodes": ["X", "Y", "Z", "W"], "edges": [["X", "Y"], ["X", "Z"], ["Y", "W"], ["Z", "W"]]}


def nonlinear_traces(n: int = 600, seed: int = 4) -> dict[str, list[float]]:
    """Gradient boosting wins every non-root node here."""
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ys = [math.sin(3 * x) + rng.gauss(0, 0.1) for x in xs]
    zs = [abs(x) + rng.gauss(0, 0.1) for x in xs]
    ws = [math.cos(2 * y) * z + rng.gauss(0, 0.1) for y, z in zip(ys, zs, strict=True)]
    return {"X": xs, "Y": ys, "Z": zs, "W": ws}


def test_sklearns_grower_and_the_lean_one_give_the_same_fits_and_draws(
    make_worker: Callable[..., Worker],
) -> None:
    args = (*FAST_ARGS, *JOBLIB_THREADS)  # the grower in joblib's processes, as on 2 cores by default
    stock, lean = make_worker(env={"SCM_LEAN_GROWER": "0"}, worker_args=args), make_worker(worker_args=args)
    params = {"graph": GRAPH, "traces": nonlinear_traces(), "config": {"seed": 5, "cache": False}}
    fits = {name: w.call("fit", params) for name, w in {"stock": stock, "lean": lean}.items()}
    mechanisms = fits["lean"]["scm"]["mechanisms"]
    assert {mechanisms[node]["model"] for node in "YZW"} == {"HistGradientBoostingRegressor"}
    assert fits["lean"]["metadata"]["fit_processes"] == 2  # node tasks in joblib's processes
    draws = {name: w.sample(fits[name]["model_id"], "observational", num_samples=500, seed=9)
             for name, w in {"stock": stock, "lean": lean}.items()}
    ran = {name: fit["metadata"].pop("fast_paths") for name, fit in fits.items()}
    assert "lean_grower" in ran["lean"] and "lean_grower" not in ran["stock"]  # it says which ran
    assert without_run_details(fits["lean"]) == without_run_details(fits["stock"])
    assert draws["lean"].samples is not None and len(draws["lean"].samples["W"]) == 500
    assert draws["lean"].samples == draws["stock"].samples
