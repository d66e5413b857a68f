"""Binary columns against the real worker: the same data in either encoding, the same answers.

``Worker.fit`` sends numeric columns binary once the handshake announces it; the JSON
path is driven with the same params built with ``binary=False``. A result's binary
sample columns arrive as arrays, and their values must equal the JSON ones seed for seed.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct
from array import array
from collections.abc import Callable
from typing import Any

import pytest
from scm_client import InvalidParams, SampleResult, Worker
from scm_client._wire import fit_params, traces_to_wire

GRAPH = {"nodes": ["X", "Y", "Z", "C"], "edges": [["X", "Y"], ["Y", "Z"], ["X", "C"]]}


def traces(n: int = 400, seed: int = 3) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ys = [2 * x + rng.gauss(0, 0.1) for x in xs]
    zs = [3 * y + rng.gauss(0, 0.1) for y in ys]
    cs = ["hi" if x > 0 else "lo" for x in xs]
    xs[7] = None  # type: ignore[call-overload]  # a missing cell travels as NaN in the binary block
    return {"X": xs, "Y": ys, "Z": zs, "C": cs}


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Worker:
    return make_worker()


def test_handshake_announces_both_encodings(worker: Worker) -> None:
    assert worker.start()["column_encodings"] == ["json", "binary"]
    assert worker.reads_binary()


def test_the_client_sends_numeric_columns_binary_and_categorical_ones_as_lists(worker: Worker) -> None:
    wire = traces_to_wire(traces(), binary=True)
    assert {name: type(column).__name__ for name, column in wire.items()} == {
        "X": "dict", "Y": "dict", "Z": "dict", "C": "list"}
    assert wire["X"]["dtype"] == "float64"


def test_binary_and_json_fits_are_identical_seed_for_seed(worker: Worker) -> None:
    data = traces()
    config = {"seed": 11, "cache": False}
    as_json = worker.call("fit", fit_params(GRAPH, data, config, binary=False))
    as_binary = worker.call("fit", fit_params(GRAPH, data, config, binary=True))
    for result in (as_json, as_binary):
        result.pop("model_id")
        result["metadata"].pop("fitting_time_ms", None)
    assert as_binary["metadata"]["dropped_rows"] == as_json["metadata"]["dropped_rows"] == 1
    assert as_binary == as_json


def test_the_same_data_in_the_other_encoding_is_a_cache_hit(worker: Worker) -> None:
    data = traces(seed=5)
    first = worker.call("fit", fit_params(GRAPH, data, {"seed": 2}, binary=False))
    second = worker.call("fit", fit_params(GRAPH, data, {"seed": 2}, binary=True))
    assert second["metadata"]["cache_hit"] is True
    assert second["model_id"] == first["model_id"]


def test_binary_samples_equal_json_samples_seed_for_seed(make_worker: Callable[..., Worker]) -> None:
    binary, plain = make_worker(), make_worker()
    data = traces(seed=9)
    models = [w.fit(GRAPH, data, seed=4) for w in (binary, plain)]
    plain.call("initialize", {"column_encodings": ["json"]})  # this connection reads JSON only
    intervention = [{"type": "hard", "node": "X", "value": 1.5}]
    wire = [w.call("sample", {"model_id": m.model_id, "kind": "interventional", "interventions": intervention,
                               "num_samples": 300, "seed": 8}) for w, m in zip((binary, plain), models)]
    assert isinstance(wire[0]["samples"]["Z"], dict) and isinstance(wire[1]["samples"]["Z"], list)
    got = [w.sample(m, "interventional", intervention, num_samples=300, seed=8) for w, m in zip((binary, plain), models)]
    assert got[0].samples == got[1].samples
    assert got[0].statistics == got[1].statistics
    assert got[0].samples is not None and len(got[0].samples["Z"]) == 300
    # as they arrived: an array of float64 from the binary block, the JSON list as it was
    assert got[0].columns is not None and got[1].columns is not None
    assert isinstance(got[0].columns["Z"], array) and got[0].columns["Z"].typecode == "d"
    assert got[0].columns["Z"].tolist() == got[1].columns["Z"] == got[1].samples["Z"]
    assert got[0].columns["C"] == got[1].columns["C"]  # categorical: a list either way
    # raw is the reply as it came (plain JSON); plain() has the samples as lists
    assert isinstance(got[0].raw["samples"]["Z"]["data"], str)
    assert json.loads(json.dumps(got[0].plain()))["samples"] == got[1].raw["samples"]


def test_nan_in_a_binary_sample_column_is_none_in_samples() -> None:
    """The one rule for missing values: NaN in a binary block reads as null does."""
    column = array("d", [1.5, math.nan, 2.5])
    result = SampleResult.from_wire({"statistics": {}, "samples": {"Y": column, "C": ["a", None, "b"]}})
    assert result.samples == {"Y": [1.5, None, 2.5], "C": ["a", None, "b"]}
    assert result.columns is not None and result.columns["Y"] is column
    assert SampleResult.from_wire({"statistics": {}, "samples": None}).samples is None


def test_counterfactual_observed_rows_may_be_binary(worker: Worker) -> None:
    model = worker.fit({"nodes": ["X", "Y"], "edges": [["X", "Y"]]},
                       {"X": [float(i % 17) for i in range(300)], "Y": [2.0 * (i % 17) + 0.01 * (i % 3) for i in range(300)]},
                       seed=1)
    observed = {"X": [1.0, 2.0], "Y": [2.0, 4.0]}
    result = worker.sample(model, "counterfactual", [{"type": "hard", "node": "X", "value": 3.0}], observed=observed)
    assert result.samples is not None
    assert [round(v) for v in result.samples["Y"]] == [6, 6]


def test_a_malformed_binary_column_names_its_field_and_the_worker_keeps_serving(worker: Worker) -> None:
    params = fit_params(GRAPH, traces(), {}, binary=True)
    params["traces"]["Y"] = {"dtype": "float64", "data": base64.b64encode(b"\0" * 9).decode()}
    with pytest.raises(InvalidParams) as caught:
        worker.call("fit", params)
    assert caught.value.data["field"] == "traces.Y.data"
    params["traces"]["Y"] = {"dtype": "float64", "data": base64.b64encode(struct.pack("<2d", 1.0, float("inf"))).decode()}
    with pytest.raises(InvalidParams) as caught:
        worker.call("fit", params)
    assert caught.value.data["field"] == "traces.Y[1]"
    assert worker.ping() == "pong"
