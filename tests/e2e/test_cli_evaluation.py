"""`scm evaluate` and `scm falsify` as real subprocesses, and ``Worker.evaluate`` /
``Worker.falsify``, on the real worker with real DoWhy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from scm_client import EvaluateResult, FalsifyResult, Worker
from support.cli import CHAIN
from support.cli import scm as run_scm

#: every run answered by one warm daemon, as in a user's shell (support.daemons.cli_daemon)
pytestmark = pytest.mark.usefixtures("cli_daemon")


def scm(*args: str) -> subprocess.CompletedProcess[str]:
    return run_scm(*args, timeout=600)  # the falsification's kernel tests


def chain_part(rows: int) -> tuple[dict[str, object], dict[str, list[float]]]:
    request = json.loads(Path(CHAIN).read_text())
    return request["graph"], {node: values[:rows] for node, values in request["traces"].items()}


def test_scm_evaluate_prints_dowhys_evaluation_tables() -> None:
    done = scm("evaluate", CHAIN, "--seed", "1", "--falsify", "--invertibility")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "the fitted model on these rows" in out and "NMSE" in out
    assert "DoWhy's evaluation of the mechanisms" in out and "CRPS" in out
    assert "overall KL divergence, generated vs observed:" in out
    assert "invertibility" in out and "not rejected" in out
    assert "graph falsification: " in out
    assert "permutations tested" in out and "6 (at most 50)" in out  # 3! of the 50 asked


def test_scm_evaluate_json_is_the_worker_result(tmp_path: Path) -> None:
    graph, rows = chain_part(300)
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    done = scm("evaluate", CHAIN, "--seed", "1", "--rows", str(tmp_path / "rows.json"), "--no-kl",
               "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metadata"]["num_samples"] == 300 and result["metadata"]["seed"] == 1
    assert set(result["mechanisms"]) == {"X", "Y", "Z"} and "overall_kl_divergence" not in result
    assert result["mechanisms"]["Y"]["crps"] < 0.5


def test_scm_falsify_prints_the_verdict_and_the_permutations_run() -> None:
    done = scm("falsify", CHAIN, "--seed", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("graph falsification: ")
    assert "6 (at most 20)" in done.stdout  # DoWhy's 1 / 0.05 asked, 3! run
    assert "local-Markov violations" in done.stdout and "Z" in done.stdout
    as_json = scm("falsify", CHAIN, "--seed", "2", "--max-permutations", "3", "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["permutations"] == 3 and result["max_permutations"] == 3


def test_scm_falsify_bad_level_is_a_usage_error() -> None:
    done = scm("falsify", CHAIN, "--significance-level", "2")
    assert done.returncode == 2
    assert "significance_level" in done.stderr


def test_worker_falsify_and_evaluate_are_typed(worker: Worker) -> None:
    graph, rows = chain_part(200)
    falsified = worker.falsify(graph, rows, max_permutations=100, seed=3)
    assert isinstance(falsified, FalsifyResult)
    assert falsified.permutations == 6 and len(falsified.permutation_violations) == 6
    assert falsified.tests == 1 and falsified.significance_level == 0.05
    fit = worker.fit(graph, rows, seed=1)
    evaluated = worker.evaluate(fit, rows, falsify_graph=True, seed=3)
    assert isinstance(evaluated, EvaluateResult)
    assert evaluated.mechanisms is not None and evaluated.mechanisms["Z"]["r2"] > 0.5
    assert evaluated.overall_kl_divergence is not None and evaluated.invertibility is None
    assert evaluated.falsification is not None and evaluated.falsification.permutations == 6
