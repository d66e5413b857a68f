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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import FitResult, InvalidParams, SampleResult, Worker
from scm_client._wire import fit_params, traces_to_wire

from support.fits import without_run_details
from support.worker_env import FAST_ARGS

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


def test_handshake_announces_the_encodings(worker: Worker) -> None:
    info = worker.start()
    assert info["column_encodings"] == ["json", "binary"]  # what a request's columns may be
    assert info["result_encodings"] == ["json", "binary", "attached"]
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
    as_json, as_binary = without_run_details(as_json), without_run_details(as_binary)
    assert as_binary["metadata"]["dropped_rows"] == as_json["metadata"]["dropped_rows"] == 1
    assert as_binary == as_json


def test_the_same_data_in_the_other_encoding_is_a_cache_hit(worker: Worker) -> None:
    data = traces(seed=5)
    first = worker.call("fit", fit_params(GRAPH, data, {"seed": 2}, binary=False))
    second = worker.call("fit", fit_params(GRAPH, data, {"seed": 2}, binary=True))
    assert second["metadata"]["cache_hit"] is True
    assert second["model_id"] == first["model_id"]


#: what each connection says it reads, and what a numeric sample column then is on the wire
RESULT_ENCODINGS = {"attached": ["json", "binary", "attached"], "binary": ["json", "binary"], "json": ["json"]}


def on_the_wire(worker: Worker, method: str, params: dict[str, Any]) -> Any:
    """A result as the channel reads it, before the Worker makes anything of it."""
    channel = worker._channel
    assert channel is not None
    return channel.request(method, params)[1].result(timeout=120)


Encoded = tuple[dict[str, Worker], dict[str, FitResult]]


@pytest.fixture(scope="module")
def by_encoding(worker_python: str) -> Iterator[Encoded]:
    """A worker per result encoding, each with the same seeded fit, its connection reading
    that encoding: shared by the tests below, which only sample the models."""
    workers = {name: Worker(worker_python, worker_args=FAST_ARGS) for name in RESULT_ENCODINGS}
    try:
        data = traces(seed=9)
        models = {name: w.fit(GRAPH, data, seed=4) for name, w in workers.items()}
        for name, w in workers.items():
            w.call("initialize", {"column_encodings": RESULT_ENCODINGS[name]})  # what this connection reads
        yield workers, models
    finally:
        for w in workers.values():
            w.close()


def test_call_returns_sample_columns_as_lists_in_every_result_encoding(by_encoding: Encoded) -> None:
    """``Worker.call`` is plain JSON: no ``{"dtype", "attached"}`` or base64 block reaches its
    caller, whatever the connection reads; values and gaps as the JSON encoding's."""
    workers, models = by_encoding
    params = {"kind": "observational", "num_samples": 200, "seed": 8}
    got = {name: w.call("sample", {"model_id": models[name].model_id, **params})
           for name, w in workers.items()}
    for name, result in got.items():
        assert type(result) is dict, name
        assert all(type(column) is list for column in result["samples"].values()), name
        plain = json.loads(json.dumps(result, allow_nan=False))
        assert plain["samples"] == got["json"]["samples"], name
        assert plain["statistics"] == got["json"]["statistics"], name
    pending = workers["attached"].submit("sample", {"model_id": models["attached"].model_id, **params})
    assert pending.result(timeout=120)["samples"] == got["json"]["samples"]  # a handle's too


def test_samples_are_equal_seed_for_seed_in_every_result_encoding(by_encoding: Encoded) -> None:
    workers, models = by_encoding
    intervention = [{"type": "hard", "node": "X", "value": 1.5}]
    params = {"kind": "interventional", "interventions": intervention, "num_samples": 300, "seed": 8}
    # the reply as it arrived on each connection (the channel's: Worker.call makes it plain JSON)
    wire = {name: on_the_wire(w, "sample", {"model_id": models[name].model_id, **params})
            for name, w in workers.items()}
    assert wire["attached"]["samples"]["Z"] == {"dtype": "float64", "attached": 2}  # parts: X, Y, Z
    assert isinstance(wire["binary"]["samples"]["Z"]["data"], str)
    assert isinstance(wire["json"]["samples"]["Z"], list)
    parts = getattr(wire["attached"], "attached")
    assert [len(part) for part in parts] == [300, 300, 300]  # C, categorical, is a JSON list
    assert parts[2].tolist() == wire["json"]["samples"]["Z"]
    got = {name: w.sample(models[name], "interventional", intervention, num_samples=300, seed=8)
           for name, w in workers.items()}
    plain = got["json"]
    for name in ("attached", "binary"):
        assert got[name].samples == plain.samples, name
        assert got[name].statistics == plain.statistics, name
        # as they arrived: an array of float64 from the binary block, the JSON list as it was
        columns = got[name].columns
        assert columns is not None and plain.columns is not None
        assert isinstance(columns["Z"], array) and columns["Z"].typecode == "d"
        assert columns["Z"].tolist() == plain.columns["Z"] == plain.samples["Z"]
        assert columns["C"] == plain.columns["C"]  # categorical: a list either way
        # raw is the reply as it came, as plain JSON (no bytes); plain() has the samples as lists
        assert type(got[name].raw) is dict
        assert json.loads(json.dumps(got[name].plain()))["samples"] == plain.raw["samples"]
    assert plain.samples is not None and len(plain.samples["Z"]) == 300
    assert workers["attached"].ping() == "pong"  # the line after the attached bytes is read as a line


def test_attached_columns_cross_the_daemon_socket(make_worker: Callable[..., Worker], worker_python: str,
                                                  daemon_dir: Path) -> None:
    with Worker.connect(worker_python, worker_args=FAST_ARGS, idle_timeout=300) as over_socket:
        in_process = make_worker()
        data = traces(n=3000, seed=2)
        models = [w.fit(GRAPH, data, seed=3) for w in (over_socket, in_process)]
        got = [w.sample(m, num_samples=50_000, seed=5) for w, m in zip((over_socket, in_process), models)]
        assert over_socket.info["daemon"] is True
        assert got[0].columns is not None and got[1].columns is not None
        assert got[0].columns["Y"] == got[1].columns["Y"] and len(got[0].columns["Y"]) == 50_000
        assert over_socket.ping() == "pong"


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
