"""scm_client.compat.DoWhyClient as lift-sys uses it, against the real 3.11 worker.

SCMFitter._fit_dynamic calls ``fit_scm(graph=..., traces=..., quality=..., validate_r2=True,
r2_threshold=..., test_size=0.2)`` and reads ``status``, ``validation``, ``scm`` and
``metadata``; InterventionEngine.execute calls ``query_scm(...)`` and needs status
"success", ``samples``, ``statistics`` and ``metadata``. Both construct a new client per
call and catch FileNotFoundError at construction and DoWhySubprocessError on calls.
Most graphs and frames here are the duck-typed stand-ins of fakes.py; the last tests use
real networkx ``DiGraph`` and pandas ``DataFrame`` objects (test dependencies of the e2e env,
never of the client) and hold them to the stand-ins' answers.
"""

from __future__ import annotations

import math
import os
import random
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDataFrame, FakeDiGraph, FakeGraph, load_fixture
from scm_client import State, WorkerError, WorkerStartError, WorkerTimeout, compat
from scm_client.compat import DoWhyClient, DoWhySubprocessError

STATISTICS = {"mean", "std", "q05", "q50", "q95", "min", "max"}


@pytest.fixture(scope="module", autouse=True)
def _shared_workers() -> Iterator[None]:
    """Each module starts and ends without a compat worker (they are process-wide)."""
    compat.close_shared_workers()
    yield
    compat.close_shared_workers()


@pytest.fixture
def client() -> DoWhyClient:
    return DoWhyClient(timeout=120.0)


@pytest.fixture
def broken_client(tmp_path: Path) -> DoWhyClient:
    """A client whose 'python' exists but exits at once: any contact with it fails."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 3\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return DoWhyClient(python_path=str(python), timeout=10.0)


def chain(n: int, seed: int) -> tuple[FakeDiGraph, FakeDataFrame]:
    """Fresh rows of the linear chain X → Y → Z (Y = 2X + ε, Z = 3Y + ε)."""
    rng = random.Random(seed)
    xs = [rng.gauss(0, 1) for _ in range(n)]
    ys = [2 * x + rng.gauss(0, 0.1) for x in xs]
    zs = [3 * y + rng.gauss(0, 0.1) for y in ys]
    return FakeDiGraph([("X", "Y"), ("Y", "Z")]), FakeDataFrame({"X": xs, "Y": ys, "Z": zs})


def fit_like_scm_fitter(client: DoWhyClient, graph: Any, traces: Any) -> dict[str, Any]:
    """The call and the reads of lift-sys's SCMFitter._fit_dynamic."""
    result = client.fit_scm(
        graph=graph,
        traces=traces,
        quality="GOOD",
        validate_r2=True,
        r2_threshold=0.7,
        test_size=0.2,
    )
    validation = result.get("validation", {})
    if result.get("status") == "validation_failed":
        # SCMFitter formats these into its ValidationError: a number under the threshold, the nodes
        mean_r2, failed = validation["mean_r2"], validation["failed_nodes"]
        assert isinstance(mean_r2, float) and math.isfinite(mean_r2) and mean_r2 < 0.7, validation
        assert isinstance(failed, list) and failed and all(isinstance(n, str) for n in failed), validation
        message = f"mean R²={mean_r2:.4f}; failed nodes: {failed}"
        assert message.endswith(str(failed)) and f"{mean_r2:.4f}" in message
    else:
        assert isinstance(result.get("scm", {}).get("mechanisms", {}), dict)
        assert isinstance(result.get("metadata", {}), dict)
    return result


def query_like_intervention_engine(
    graph: Any, traces: Any, interventions: list[dict[str, Any]], **kwargs: Any
) -> dict[str, Any]:
    """The call and the reads of lift-sys's InterventionEngine.execute (a new client per call)."""
    result = DoWhyClient(timeout=60.0).query_scm(
        graph=graph, traces=traces, interventions=interventions, quality="GOOD", **kwargs
    )
    assert result.get("status") == "success", result.get("error")
    assert {"samples", "statistics", "metadata"} <= set(result)
    return result


def model_count(client: DoWhyClient) -> int:
    return len(client.worker.models())


# -- fit_scm: the three statuses of fit_scm.py -----------------------------------------


def test_linear_chain_fits_with_the_original_shape(client: DoWhyClient) -> None:
    result = fit_like_scm_fitter(client, *load_fixture("linear_chain"))
    assert result["status"] == "success"
    validation = result["validation"]
    assert validation["passed"] is True and validation["failed_nodes"] == []
    assert validation["threshold"] == 0.7 and validation["mean_r2"] > 0.95
    assert set(validation["r2_scores"]) == {"Y", "Z"}
    mechanisms = result["scm"]["mechanisms"]
    assert mechanisms["X"]["type"] == "empirical" and mechanisms["X"]["params"] is None
    for node, slope in (("Y", 2.0), ("Z", 3.0)):
        assert mechanisms[node]["type"] == "linear"
        params = mechanisms[node]["params"]
        assert params["coefficients"][0] == pytest.approx(slope, abs=0.05)
        assert isinstance(params["intercept"], float) and params["model_type"]
    assert result["scm"]["graph"] == {"nodes": ["X", "Y", "Z"], "edges": [["X", "Y"], ["Y", "Z"]]}
    metadata = result["metadata"]
    assert (metadata["num_samples"], metadata["num_train"], metadata["num_val"]) == (1000, 800, 200)
    assert metadata["quality"] == "GOOD" and metadata["seed"] == 42
    assert isinstance(metadata["fitting_time_ms"], int) and metadata["dowhy_version"]


def test_noisy_data_is_a_validation_failed_status_not_an_error(client: DoWhyClient) -> None:
    result = fit_like_scm_fitter(client, *load_fixture("noisy_data"))
    assert result["status"] == "validation_failed"
    validation = result["validation"]
    assert validation["passed"] is False and validation["mean_r2"] < 0.7
    assert validation["failed_nodes"] == ["Y"]
    assert result["scm"]["mechanisms"]["Y"]["params"] is not None


def test_without_validation_noisy_data_passes_as_in_the_original(client: DoWhyClient) -> None:
    result = client.fit_scm(*load_fixture("noisy_data"), validate_r2=False)
    assert result["status"] == "success"
    assert result["validation"]["passed"] is True and result["validation"]["failed_nodes"] == []
    assert result["validation"]["mean_r2"] < 0.7


def test_fifty_rows_is_a_warning_status_without_a_model(client: DoWhyClient) -> None:
    before = client.fits_performed
    result = client.fit_scm(*load_fixture("insufficient_data"))
    assert result == {
        "status": "warning",
        "message": "Only 50 samples (recommended: ≥100)",
        "scm": None,
        "validation": None,
    }
    assert client.fits_performed == before


def test_fewer_than_100_complete_rows_is_the_same_warning(client: DoWhyClient) -> None:
    """150 rows of which 60 have a gap: 90 complete rows, as fit_scm.py's dropna() left."""
    graph, full = chain(150, seed=32)
    columns = {name: full[name].tolist() for name in full.columns}
    columns["Y"][:60] = [None] * 60
    result = client.fit_scm(graph, FakeDataFrame(columns))
    assert result == {"status": "warning", "message": "Only 90 samples (recommended: ≥100)",
                      "scm": None, "validation": None}


def test_leakage_warning_does_not_change_the_status(client: DoWhyClient) -> None:
    result = client.fit_scm(*load_fixture("perfect_correlation"))
    assert result["status"] == "success"
    assert [w["code"] for w in result["warnings"]] == ["possible_leakage"]


def test_module_level_fit_scm(client: DoWhyClient) -> None:
    result = compat.fit_scm(*load_fixture("code_execution"), r2_threshold=0.9)
    assert result["status"] == "success" and result["validation"]["threshold"] == 0.9
    assert result["scm"]["mechanisms"]["output"]["params"]["coefficients"][0] == pytest.approx(
        2.0, abs=1e-6
    )


# -- query_scm: query_fitted_scm.py's answer, without refitting --------------------------


def test_do_x_equals_5_on_the_linear_chain() -> None:
    result = query_like_intervention_engine(
        *load_fixture("linear_chain"), [{"type": "hard", "node": "X", "value": 5.0}]
    )
    assert result["query_type"] == "interventional"
    statistics = result["statistics"]
    assert statistics["Y"]["mean"] == pytest.approx(10.0, abs=0.5)
    assert statistics["Z"]["mean"] == pytest.approx(30.0, abs=0.5)
    assert set(statistics["Z"]) >= STATISTICS
    assert set(result["samples"]) == {"X", "Y", "Z"} and len(result["samples"]["Z"]) == 1000
    assert set(result["samples"]["X"]) == {5.0}
    metadata = result["metadata"]
    assert metadata["num_samples"] == 1000 and metadata["num_interventions"] == 1
    assert metadata["query_nodes"] == ["X", "Y", "Z"] and metadata["num_training_samples"] == 1000
    assert isinstance(metadata["query_time_ms"], int) and isinstance(metadata["fit_time_ms"], int)


def test_std_is_the_sample_std_the_original_reported(client: DoWhyClient) -> None:
    result = client.query_scm(
        *load_fixture("linear_chain"), [{"type": "hard", "node": "X", "value": 1}], num_samples=200
    )
    values = result["samples"]["Z"]
    mean = sum(values) / len(values)
    ddof1 = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    assert result["statistics"]["Z"]["std"] == pytest.approx(ddof1, rel=1e-9)


def test_second_query_on_the_same_data_does_not_refit(client: DoWhyClient) -> None:
    graph, traces = chain(400, seed=11)
    first = client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])
    fits, models = client.fits_performed, model_count(client)
    second = client.query_scm(
        graph, traces, [{"type": "soft", "node": "X", "transform": "shift", "param": 2.0}]
    )
    assert (client.fits_performed, model_count(client)) == (fits, models)
    assert first["metadata"]["model_cached"] is False and first["metadata"]["fit_time_ms"] > 0
    assert second["metadata"]["model_cached"] is True and second["metadata"]["fit_time_ms"] == 0
    assert second["statistics"]["Y"]["mean"] == pytest.approx(
        2 * (second["statistics"]["X"]["mean"]), abs=0.1
    )


def test_a_fit_after_a_query_of_the_same_data_is_the_worker_s_cached_model(client: DoWhyClient) -> None:
    """compat keeps no model cache of its own: the query sent its fit, and the same request
    again (fit_scm with lift-sys's defaults, then another query) is the one fit in the
    worker, answered by its fit cache (``metadata.cache_hit``)."""
    graph, traces = chain(300, seed=31)
    do_x = [{"type": "hard", "node": "X", "value": 2.0}]
    queried = client.query_scm(graph, traces, do_x)
    fits, models = client.fits_performed, model_count(client)
    assert queried["metadata"]["model_cached"] is False
    fitted = fit_like_scm_fitter(client, graph, traces)
    assert fitted["status"] == "success" and fitted["metadata"]["cache_hit"] is True
    assert fitted["model_id"] == queried["metadata"]["model_id"]
    again = query_like_intervention_engine(graph, traces, do_x)
    assert again["metadata"]["model_cached"] is True and again["metadata"]["fit_time_ms"] == 0
    assert again["metadata"]["model_id"] == fitted["model_id"]
    assert (client.fits_performed, model_count(client)) == (fits, models)


def test_query_after_fit_reuses_the_fitted_model(client: DoWhyClient) -> None:
    graph, traces = chain(300, seed=12)
    assert fit_like_scm_fitter(client, graph, traces)["status"] == "success"
    models = model_count(client)
    result = query_like_intervention_engine(
        graph, traces, [{"type": "hard", "node": "X", "value": 2.0}]
    )
    assert result["metadata"]["model_cached"] is True
    assert model_count(client) == models


def test_a_different_quality_is_a_different_model(client: DoWhyClient) -> None:
    graph, traces = chain(200, seed=13)
    client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])
    result = client.query_scm(
        graph, traces, [{"type": "hard", "node": "X", "value": 1.0}], quality="BETTER"
    )
    assert result["metadata"]["model_cached"] is False


def test_fast_quality_is_passed_through_not_replaced_by_good(
    client: DoWhyClient, caplog: pytest.LogCaptureFixture
) -> None:
    graph, traces = chain(300, seed=14)
    with caplog.at_level("WARNING", logger="scm_client.compat"):
        result = client.fit_scm(graph=graph, traces=traces, quality="FAST", validate_r2=True)
    assert result["status"] == "success", result
    assert result["metadata"]["quality"] == "FAST"
    assert result["scm"]["mechanisms"]["Y"]["chosen_by"] == "FAST"
    assert "unknown quality" not in caplog.text


def test_query_nodes_and_multiple_interventions() -> None:
    graph = FakeDiGraph([("X", "Y"), ("Y", "W"), ("Z", "W")])
    rng = random.Random(5)
    xs = [rng.uniform(-5, 5) for _ in range(300)]
    zs = [rng.uniform(-5, 5) for _ in range(300)]
    ys = [2 * x for x in xs]
    traces = FakeDataFrame(
        {"X": xs, "Y": ys, "Z": zs, "W": [y + z for y, z in zip(ys, zs, strict=True)]}
    )
    interventions = [
        {"type": "hard", "node": "X", "value": 5.0},
        {"type": "hard", "node": "Z", "value": 10.0},
    ]
    result = query_like_intervention_engine(graph, traces, interventions, query_nodes=["W"])
    assert set(result["samples"]) == set(result["statistics"]) == {"W"}
    assert result["statistics"]["W"]["mean"] == pytest.approx(20.0, abs=0.5)
    assert result["metadata"]["query_nodes"] == ["W"]


def test_no_interventions_draws_observational_samples(client: DoWhyClient) -> None:
    result = client.query_scm(*load_fixture("linear_chain"), [], num_samples=500)
    assert result["status"] == "success" and result["query_type"] == "interventional"
    assert result["statistics"]["X"]["mean"] == pytest.approx(0.0, abs=0.3)


def test_query_on_fewer_than_100_rows_still_answers(client: DoWhyClient) -> None:
    """query_fitted_scm.py fitted on whatever rows it had; only fit_scm.py warned."""
    result = client.query_scm(
        *load_fixture("insufficient_data"), [{"type": "hard", "node": "X", "value": 1.0}]
    )
    assert result["status"] == "success"
    graph, traces = chain(10, seed=14)
    assert (
        client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])["status"]
        == "success"
    )
    graph, traces = chain(9, seed=14)
    with pytest.raises(DoWhySubprocessError, match="Insufficient data"):
        client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])


def test_bad_interventions_raise_dowhy_subprocess_error(client: DoWhyClient) -> None:
    graph, traces = load_fixture("linear_chain")
    with pytest.raises(DoWhySubprocessError, match="unknown node"):
        client.query_scm(graph, traces, [{"type": "hard", "node": "Q", "value": 1.0}])
    with pytest.raises(DoWhySubprocessError):  # lift-sys's SoftIntervention(transform="custom")
        client.query_scm(
            graph,
            traces,
            [{"type": "soft", "node": "X", "transform": "custom", "custom_expr": "X**2"}],
        )
    assert (
        client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])["status"]
        == "success"
    )


# -- a worker that restarts or loses models ---------------------------------------------


def wait_until_crashed(client: DoWhyClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.worker.state is not State.CRASHED:
        assert time.monotonic() < deadline, "the killed worker still looks alive"
        time.sleep(0.02)


def test_killed_worker_is_replaced_and_the_model_refitted(client: DoWhyClient) -> None:
    graph, traces = chain(300, seed=21)
    do_x = [{"type": "hard", "node": "X", "value": 3.0}]
    client.query_scm(graph, traces, do_x)
    pid, fits = client.worker.pid, client.fits_performed
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until_crashed(client)
    result = client.query_scm(graph, traces, do_x)
    assert result["statistics"]["Y"]["mean"] == pytest.approx(6.0, abs=0.3)
    assert client.worker.pid != pid
    assert client.fits_performed == fits + 1 and result["metadata"]["model_cached"] is False


def test_dropped_model_is_refitted_once(client: DoWhyClient) -> None:
    graph, traces = chain(300, seed=22)
    do_x = [{"type": "hard", "node": "X", "value": -1.0}]
    first = client.query_scm(graph, traces, do_x)
    client.worker.drop(first["metadata"]["model_id"])
    fits = client.fits_performed
    second = client.query_scm(graph, traces, do_x)
    assert client.fits_performed == fits + 1
    assert second["metadata"]["model_id"] != first["metadata"]["model_id"]


def test_timeout_raises_dowhy_subprocess_error_and_the_next_call_recovers() -> None:
    graph, traces = chain(2000, seed=23)
    with pytest.raises(DoWhySubprocessError, match="timed out after 0.01s") as caught:
        DoWhyClient(timeout=0.01).fit_scm(graph, traces)
    assert isinstance(caught.value.__cause__, WorkerTimeout)
    assert DoWhyClient(timeout=120.0).fit_scm(graph, traces)["status"] == "success"


# -- input validation and construction, before any worker is contacted -----------------


def test_a_broken_worker_raises_dowhy_subprocess_error(broken_client: DoWhyClient) -> None:
    """The control for the tests below: this client fails whenever it reaches its worker."""
    with pytest.raises(DoWhySubprocessError) as caught:
        broken_client.fit_scm(*load_fixture("linear_chain"))
    assert isinstance(caught.value, WorkerError)
    assert isinstance(caught.value.__cause__, WorkerStartError)
    assert broken_client.check_availability() is False


@pytest.mark.parametrize(
    ("graph", "traces", "message"),
    [
        (
            FakeDiGraph([("X", "Y"), ("Y", "X")]),
            FakeDataFrame({"X": [1.0], "Y": [2.0]}),
            "Directed Acyclic",
        ),
        (FakeGraph([("X", "Y")]), FakeDataFrame({"X": [1.0], "Y": [2.0]}), "NetworkX DiGraph"),
        (
            {"nodes": ["X", "Y"], "edges": [["X", "Y"]]},
            FakeDataFrame({"X": [1.0], "Y": [2.0]}),
            "NetworkX DiGraph",
        ),
        (FakeDiGraph([("X", "Y")]), {"X": [1.0], "Y": [2.0]}, "pandas DataFrame"),
        (FakeDiGraph([("X", "Y")]), FakeDataFrame({"X": [1.0], "W": [2.0]}), "do not match"),
        (
            FakeDiGraph([("X", "Y")]),
            FakeDataFrame({"X": [1.0], "Y": [float("inf")]}),
            "cannot be sent",
        ),
    ],
)
def test_bad_input_is_a_value_error_before_the_worker(
    broken_client: DoWhyClient, graph: Any, traces: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        broken_client.fit_scm(graph, traces)
    with pytest.raises(ValueError, match=message):
        broken_client.query_scm(graph, traces, [{"type": "hard", "node": "X", "value": 1.0}])


def test_mismatch_message_names_both_sides(broken_client: DoWhyClient) -> None:
    with pytest.raises(ValueError) as caught:
        broken_client.fit_scm(
            FakeDiGraph([("x", "y")]), FakeDataFrame({"wrong_col": [1, 2, 3], "y": [2, 4, 6]})
        )
    assert "Missing in traces: {'x'}" in str(
        caught.value
    ) and "Missing in graph: {'wrong_col'}" in str(caught.value)


def test_empty_graph_and_frame_is_a_warning_without_a_worker(broken_client: DoWhyClient) -> None:
    assert broken_client.fit_scm(FakeDiGraph(), FakeDataFrame({}))["status"] == "warning"


def test_missing_python_path_is_file_not_found_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        DoWhyClient(python_path=str(tmp_path / "no-such-python"))


def test_missing_discovered_python_is_file_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCM_WORKER_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(FileNotFoundError, match="SCM_WORKER_PYTHON"):
        DoWhyClient()


def test_script_path_is_accepted_and_ignored(tmp_path: Path) -> None:
    client = DoWhyClient(script_path=str(tmp_path / "fit_scm.py"), timeout=5.0)
    assert client.timeout == 5.0 and client.python_path.exists()


def test_check_availability(client: DoWhyClient) -> None:
    assert client.check_availability() is True


def test_clients_share_one_worker() -> None:
    assert DoWhyClient().worker is DoWhyClient(timeout=1.0).worker


# -- real networkx and pandas objects, as lift-sys passes them ----------------------------


def test_real_digraph_and_dataframe_fit_and_query_as_the_stand_ins_do(client: DoWhyClient) -> None:
    """numpy scalars, an int, a bool and a string column, a DiGraph built node by node."""
    import networkx as nx
    import pandas as pd

    fake_graph, fake_traces = load_fixture("multi_parent")
    graph = nx.DiGraph()
    graph.add_nodes_from(fake_graph.nodes)
    graph.add_edges_from(fake_graph.edges)
    traces = pd.DataFrame({name: fake_traces[name].tolist() for name in fake_traces.columns})
    real, fake = fit_like_scm_fitter(client, graph, traces), fit_like_scm_fitter(client, fake_graph, fake_traces)
    assert real["status"] == fake["status"] == "success", (real, fake)
    assert real["scm"] == fake["scm"] and real["validation"] == fake["validation"]
    interventions = [{"type": "hard", "node": "X", "value": 1.0}]
    client.query_scm(fake_graph, fake_traces, interventions, num_samples=200)
    fits = client.fits_performed
    queried = client.query_scm(graph, traces, interventions, num_samples=200)
    # the real objects put exactly the stand-ins' graph and rows on the wire: the same cached model answers
    assert client.fits_performed == fits, "the DiGraph/DataFrame were sent as other data than the stand-ins"
    assert queried["status"] == "success" and set(queried["samples"]) == {"X", "Y", "Z"}
    assert set(queried["samples"]["X"]) == {1.0} and len(queried["samples"]["Z"]) == 200
    query_like_intervention_engine(graph, traces, interventions, num_samples=50)
    mixed = pd.DataFrame({"n": range(300), "flag": [i % 2 == 0 for i in range(300)],
                          "label": ["a" if i % 3 else "b" for i in range(300)]})
    assert mixed.dtypes.tolist() == [pd.Series([1]).dtype, bool, object]
    mixed_graph = nx.DiGraph([("n", "flag"), ("flag", "label")])
    assert fit_like_scm_fitter(client, mixed_graph, mixed)["status"] in ("success", "validation_failed")


def test_real_undirected_cyclic_and_mismatched_inputs_are_value_errors(broken_client: DoWhyClient) -> None:
    import networkx as nx
    import pandas as pd

    frame = pd.DataFrame({"X": [1.0, 2.0], "Y": [2.0, 4.0]})
    for graph, traces, message in (
        (nx.Graph([("X", "Y")]), frame, "NetworkX DiGraph"),
        (nx.DiGraph([("X", "Y"), ("Y", "X")]), frame, "Directed Acyclic"),
        (nx.DiGraph([("X", "W")]), frame, "do not match"),
        (nx.DiGraph([("X", "Y")]), frame.to_dict(orient="list"), "pandas DataFrame"),
    ):
        with pytest.raises(ValueError, match=message):
            broken_client.fit_scm(graph, traces)
