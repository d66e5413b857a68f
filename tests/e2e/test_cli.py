"""The `scm` command line end to end: a real subprocess (`python -m scm_client.cli`) driving the real worker.

Needs SCM_WORKER_PYTHON (the worker's Python 3.11 with DoWhy); the tests fail, not skip,
without it. The runs share one daemon (``cli_daemon``), as a user's shell does; the doctor's
tests run without it. Models persist nowhere outside tmp.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.fixture(scope="module")
def env(worker_python: str, tmp_path_factory: pytest.TempPathFactory, cli_daemon: Path) -> dict[str, str]:
    """The CLI's environment: the worker interpreter, UTF-8 output, a private model store,
    the module's daemon."""
    return {**os.environ, "SCM_WORKER_PYTHON": worker_python, "PYTHONIOENCODING": "utf-8",
            "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}


def run_scm(env: dict[str, str], *args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scm_client.cli", *map(str, args)],
        capture_output=True, text=True, encoding="utf-8", cwd=cwd, env=env, timeout=600, check=False,
    )


def coefficient(output: str, node: str, parent: str) -> float:
    match = re.search(rf"^\s*(?:linear\s+)?{node} = (-?[\d.]+)·{parent}\b", output, re.MULTILINE)
    assert match, f"no equation for {node} in:\n{output}"
    return float(match.group(1))


def table_row(output: str, node: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == node and len(cells) >= 6:
            return cells
    raise AssertionError(f"no statistics row for {node} in:\n{output}")


# -- doctor ---------------------------------------------------------------------------------


def test_doctor_passes_and_reports_dowhy_version(env: dict[str, str], worker_python: str) -> None:
    probe = "import importlib.metadata as m; print(m.version('dowhy'))"
    dowhy = subprocess.run([worker_python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    done = run_scm({**env, "SCM_DAEMON": "off"}, "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"ok\s+dowhy\s+{re.escape(dowhy)}", done.stdout)
    assert f"DoWhy {dowhy}" in done.stdout  # from the live handshake
    assert re.search(r"ok\s+ping\s+[\d.]+ ms", done.stdout)
    assert re.search(r"ok\s+daemon\s+off \(SCM_DAEMON\)", done.stdout)  # the suites' default
    assert re.search(r"ok\s+fast paths\s+active: lean_grower, pruned_selection, tree_tables$",
                     done.stdout, re.MULTILINE)


def test_doctor_names_the_fast_paths_scm_fast_0_turns_off(env: dict[str, str]) -> None:
    done = run_scm({**env, "SCM_FAST": "0", "SCM_DAEMON": "off"}, "doctor")  # its own worker
    assert done.returncode == 0, done.stdout + done.stderr
    off = "; ".join(f"{name} off (SCM_FAST=0)"
                    for name in ("lean_grower", "pruned_selection", "tree_tables"))
    assert re.search(rf"ok\s+fast paths\s+{re.escape(off)}$", done.stdout, re.MULTILINE)


def test_doctor_without_a_worker_interpreter_says_how_to_fix(env: dict[str, str], tmp_path: Path) -> None:
    done = run_scm(env, "doctor", "--python", tmp_path / "no-such-python")
    assert done.returncode == 1
    assert re.search(r"missing\s+worker python", done.stdout)
    assert "make venvs" in done.stdout and "SCM_WORKER_PYTHON" in done.stdout


# -- fit ------------------------------------------------------------------------------------


def test_fit_prints_linear_mechanisms_and_coefficients(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", FIXTURES / "linear_chain.json", "--seed", "42")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for node, parent in (("Y", "X"), ("Z", "Y")):
        assert re.search(rf"^\s*{node}\s+linear\s+LinearRegression\s+{parent}\s+R² [\d.]+ ✓", out, re.MULTILINE), out
    assert coefficient(out, "Y", "X") == pytest.approx(2.0, abs=0.05)
    assert coefficient(out, "Z", "Y") == pytest.approx(3.0, abs=0.05)
    assert "passed" in out and "1000 rows" in out and "seed 42" in out


def test_fit_json_prints_the_raw_result(env: dict[str, str]) -> None:
    # seeded: the chain is linear, but on some fold shuffles DoWhy scores a polynomial a
    # hair better for Y, and that choice is kept (config.linear_tolerance is 0)
    done = run_scm(env, "fit", FIXTURES / "linear_chain.json", "--json", "--quality", "good",
                   "--seed", "42")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model_id"] and result["status"] == "success"
    assert result["scm"]["mechanisms"]["Y"]["type"] == "linear"
    assert result["metadata"]["quality"] == "GOOD"


def test_fit_quality_fast_is_the_worker_s_own_selection(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", FIXTURES / "nonlinear.json", "--json", "--quality", "fast",
                   "--seed", "42")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metadata"]["quality"] == "FAST"
    assert result["scm"]["mechanisms"]["Y"]["chosen_by"] == "FAST"
    assert any("cut" in c for c in result["scm"]["mechanisms"]["Y"]["candidates"])
    summary = run_scm(env, "fit", FIXTURES / "nonlinear.json", "--quality", "FAST", "--seed", "42")
    assert summary.returncode == 0, summary.stderr
    assert "[chosen by FAST]" in summary.stdout, summary.stdout


def test_validation_failure_exits_3_and_names_the_node(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", FIXTURES / "noisy_data.json", "--seed", "42")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Validation failed" in done.stderr and "below threshold: Y" in done.stderr
    assert re.search(r"^\s*Y\s+[\d.]+\s+✗", done.stderr, re.MULTILINE), done.stderr
    assert done.stdout == ""


def test_no_validate_returns_the_failing_model(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", FIXTURES / "noisy_data.json", "--no-validate", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["validation"]["passed"] is False


def test_insufficient_data_exits_4(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", FIXTURES / "insufficient_data.json")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "Insufficient data" in done.stderr and "50" in done.stderr


def test_fit_from_graph_and_csv(env: dict[str, str], tmp_path: Path) -> None:
    request = json.loads((FIXTURES / "linear_chain.json").read_text())
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(request["graph"]["edges"]))  # an edge list
    traces = tmp_path / "traces.csv"
    with traces.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(request["traces"])
        writer.writerows(zip(*request["traces"].values(), strict=True))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(request["config"]))
    done = run_scm(env, "fit", "--graph", graph, "--traces", traces, "--config", config, "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert coefficient(done.stdout, "Y", "X") == pytest.approx(2.0, abs=0.05)
    assert coefficient(done.stdout, "Z", "Y") == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(
    ("request_json", "named"),
    [
        ({"graph": {"nodes": "X", "edges": []}, "traces": {"X": [1.0]}}, "graph.nodes"),
        ({"graph": {"nodes": ["X"], "edges": []}}, "'traces'"),
        ({"graph": {"nodes": ["X"], "edges": []}, "traces": {"X": [1.0]}, "config": {"quality": "ULTRA"}},
         "config.quality"),
    ],
)
def test_malformed_request_exits_2_naming_the_field(
    env: dict[str, str], tmp_path: Path, request_json: dict[str, object], named: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(request_json))
    done = run_scm(env, "fit", path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr


def test_unparsable_request_and_bad_arguments_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"graph": ')
    done = run_scm(env, "fit", path)
    assert done.returncode == 2 and "not valid JSON" in done.stderr
    done = run_scm(env, "sample", FIXTURES / "linear_chain.json", "--do", "X")
    assert done.returncode == 2 and "NODE=VALUE" in done.stderr


def test_help_documents_the_exit_codes(env: dict[str, str]) -> None:
    done = run_scm(env, "fit", "--help")
    assert done.returncode == 0
    for code in ("0  success", "2  usage", "3  validation failed", "4  insufficient data"):
        assert code in done.stdout


# -- sample ---------------------------------------------------------------------------------


def test_sample_do_x_5_moves_y_mean_to_10(env: dict[str, str]) -> None:
    done = run_scm(env, "sample", FIXTURES / "linear_chain.json", "--do", "X=5", "--seed", "42")
    assert done.returncode == 0, done.stderr
    header = table_row(done.stdout, "node")
    assert header[1:6] == ["mean", "std", "q05", "q50", "q95"]
    assert float(table_row(done.stdout, "X")[1]) == pytest.approx(5.0)
    assert float(table_row(done.stdout, "Y")[1]) == pytest.approx(10.0, abs=0.2)
    assert float(table_row(done.stdout, "Z")[1]) == pytest.approx(30.0, abs=0.5)


def test_counterfactual_sample_needs_observed_rows(env: dict[str, str], tmp_path: Path) -> None:
    done = run_scm(env, "sample", FIXTURES / "linear_chain.json", "--kind", "counterfactual", "--do", "X=2")
    assert done.returncode == 2 and "--observed" in done.stderr
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps([{"X": 1.0, "Y": 2.0, "Z": 6.0}]))
    done = run_scm(env, "sample", FIXTURES / "linear_chain.json", "--kind", "counterfactual", "--do", "X=2",
                   "--observed", observed, "--json")
    assert done.returncode == 0, done.stderr
    samples = json.loads(done.stdout)["samples"]
    assert samples["Y"][0] == pytest.approx(4.0, abs=0.1)  # Y = 2 + 2·(2 − 1), same noise


def test_interventional_sample_on_observed_rows_is_one_per_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    """do(Y=1) on two rows: X keeps each row's value, Z is redrawn below Y; the rows'
    other columns (Y, Z: redrawn; a row id: not a node) are ignored and named."""
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps([{"X": 1.0, "Y": 2.0, "Z": 6.0, "row_id": 7},
                                    {"X": -1.0, "Y": -2.0, "Z": -6.0, "row_id": 8}]))
    args = ("sample", FIXTURES / "linear_chain.json", "--do", "Y=1", "--observed", observed,
            "--num-samples", "500", "--seed", "3")
    done = run_scm(env, *args)
    assert done.returncode == 0, done.stderr
    assert "interventional values per observed row" in done.stdout
    done = run_scm(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    sample = json.loads(done.stdout)
    assert sample["metadata"]["num_samples"] == 2
    assert sample["metadata"]["ignored_columns"] == {"observed": ["Y", "Z", "row_id"]}
    assert sample["samples"]["X"] == [1.0, -1.0] and sample["samples"]["Y"] == [1.0, 1.0]
    assert sample["samples"]["Z"] == pytest.approx([3.0, 3.0], abs=0.5)  # Z = 3Y + noise


# -- demo -----------------------------------------------------------------------------------


def test_demo_runs_every_fixture(env: dict[str, str]) -> None:
    done = run_scm(env, "demo")  # default DIR: tests/fixtures under the working directory
    assert done.returncode == 0, done.stdout + done.stderr
    for name in FIXTURE_NAMES:
        assert name in done.stdout
    assert re.search(r"noisy_data\s+ValidationFailed \(expected\)", done.stdout)
    assert re.search(r"insufficient_data\s+InsufficientData \(expected\)", done.stdout)
    assert re.search(r"linear_chain\s+fitted \(success\)", done.stdout)
    assert "do(X = 5)" in done.stdout and "ms per fit" not in done.stderr
    assert f"all {len(FIXTURE_NAMES)} requests produced a result or a structured error" in done.stdout
