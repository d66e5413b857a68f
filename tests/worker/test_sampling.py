"""The one-pass interventional sampler against DoWhy's own, on the same fitted model.

Both must draw from the same interventional distribution (the random streams differ):
compared by per-node means and category frequencies on many samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from scm_worker.checks import FitConfig, parse_graph, parse_traces
from scm_worker.engine.draws import interventional_samples
from scm_worker.engine.fitting import FittedModel, fit_model
from scm_worker.engine.frames import to_frame
from scm_worker.engine.interventions import Intervention
from scm_worker.limits import Limits

DRAWS = 20_000


@pytest.fixture(scope="module")
def model() -> FittedModel:
    """root → mid (linear) → out (non-linear) and mid → flag (categorical) → out."""
    rng = np.random.default_rng(21)
    rows = 600
    root = rng.normal(size=rows)
    mid = 1.5 * root + rng.normal(scale=0.5, size=rows)
    flag = np.where(mid + rng.normal(scale=0.5, size=rows) > 0, "on", "off")
    out = np.tanh(mid) + np.where(flag == "on", 2.0, 0.0) + rng.normal(scale=0.3, size=rows)
    columns = {"root": root, "mid": mid, "flag": flag, "out": out}
    graph = parse_graph(
        {"nodes": list(columns),
         "edges": [["root", "mid"], ["mid", "flag"], ["mid", "out"], ["flag", "out"]]},
        Limits(),
    )
    traces = {name: pd.Series(values).tolist() for name, values in columns.items()}
    frame = to_frame(parse_traces(traces, graph.nodes, Limits()))
    return fit_model(graph, frame, FitConfig(seed=3, validate_r2=False), n_jobs=1)


def _callables(model: FittedModel, interventions: list[Intervention]) -> dict[str, Any]:
    return {i.node: i.to_callable(model.kinds[i.node]) for i in interventions}


@pytest.mark.parametrize(
    "interventions",
    [
        [Intervention("root", "hard", value=1.0)],
        [Intervention("mid", "soft", transform="shift", param=-1.0)],
        [Intervention("flag", "hard", value="on")],
        [Intervention("root", "soft", transform="scale", param=2.0), Intervention("flag", "hard", value="off")],
    ],
    ids=["do-root", "shift-mid", "do-category", "two"],
)
def test_same_distribution_as_dowhy(model: FittedModel, interventions: list[Intervention]) -> None:
    as_dowhy = _callables(model, interventions)
    gcm.util.general.set_random_seed(1)
    theirs = gcm.interventional_samples(model.scm, as_dowhy, num_samples_to_draw=DRAWS)
    gcm.util.general.set_random_seed(2)
    ours = interventional_samples(model.scm, interventions, model.kinds, DRAWS)
    assert list(ours.columns) == list(theirs.columns)
    assert len(ours) == DRAWS
    for node in ("root", "mid", "out"):
        a, b = ours[node].to_numpy(float), theirs[node].to_numpy(float)
        standard_error = np.sqrt(a.var() / DRAWS + b.var() / DRAWS) + 1e-12
        assert abs(a.mean() - b.mean()) < 5 * standard_error, node
    ours_on, theirs_on = np.mean(ours["flag"] == "on"), np.mean(theirs["flag"] == "on")
    assert abs(ours_on - theirs_on) < 0.02
    assert set(ours["flag"]) <= {"on", "off"}


def test_hard_intervention_holds_and_a_seed_reproduces(model: FittedModel) -> None:
    hard = [Intervention("mid", "hard", value=2.5)]
    gcm.util.general.set_random_seed(9)
    first = interventional_samples(model.scm, hard, model.kinds, 50)
    gcm.util.general.set_random_seed(9)
    second = interventional_samples(model.scm, hard, model.kinds, 50)
    assert (first["mid"] == 2.5).all()
    pd.testing.assert_frame_equal(first, second)


def test_one_sample_keeps_its_shape(model: FittedModel) -> None:
    hard = [Intervention("root", "hard", value=0.0)]
    drawn = interventional_samples(model.scm, hard, model.kinds, 1)
    assert drawn.shape == (1, 4)
