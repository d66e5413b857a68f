"""`scm batch` and `scm models` as real subprocesses against the real worker."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest


def scm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if not os.environ.get("SCM_WORKER_PYTHON"):
        pytest.fail("SCM_WORKER_PYTHON must name the worker's Python 3.11 interpreter")
    return subprocess.run([sys.executable, "-m", "scm_client.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def write_requests(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        rng = random.Random(i)
        xs = [rng.gauss(0, 1) for _ in range(200)]
        request = {"graph": {"nodes": ["X", "Y"], "edges": [["X", "Y"]]},
                   "traces": {"X": xs, "Y": [2 * x + rng.gauss(0, 0.1) for x in xs]}, "config": {"seed": i}}
        (folder / f"req{i:02d}.json").write_text(json.dumps(request))
    (folder / "req99_bad.json").write_text(json.dumps({"graph": {"nodes": ["a"], "edges": [["a", "a"]]},
                                                        "traces": {"a": [1.0]}}))


def test_batch_writes_one_line_per_request_in_order_and_summarises(tmp_path: Path) -> None:
    write_requests(tmp_path / "in", 5)
    out = tmp_path / "results.jsonl"
    done = scm("batch", str(tmp_path / "in"), "--workers", "2", "--out", str(out), "-v")
    assert done.returncode == 1, done.stderr  # one request is bad
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["name"] for line in lines] == [f"req{i:02d}" for i in range(5)] + ["req99_bad"]
    assert all(line["ok"] for line in lines[:5])
    assert lines[5]["error"]["code"] == -32602 and lines[5]["error"]["data"]["field"] == "graph.edges[0]"
    assert lines[0]["result"]["scm"]["mechanisms"]["Y"]["type"] == "linear"
    assert "fitted" in done.stdout and "6 requests" in done.stdout
    assert "scm batch: [" in done.stderr  # plain progress lines when not a terminal, with -v


def test_batch_reads_jsonl(tmp_path: Path) -> None:
    write_requests(tmp_path / "in", 2)
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("\n".join((tmp_path / "in" / f"req{i:02d}.json").read_text() for i in range(2)) + "\n")
    out = tmp_path / "out.jsonl"
    done = scm("batch", str(jsonl), "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 2


def test_models_list_and_prune_through_the_cli(tmp_path: Path) -> None:
    store = tmp_path / "store"
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "linear_chain.json"
    request = json.loads(fixture.read_text())
    request["config"]["persist"] = True
    (tmp_path / "req.json").write_text(json.dumps(request))
    code = ("import json,sys; from scm_client import Worker; r=json.load(open(sys.argv[1]));"
            "w=Worker(worker_args=('--no-warmup','--store',sys.argv[2])); print(w.fit(r['graph'],r['traces'],"
            "**r['config']).model_id); w.close()")
    fitted = subprocess.run([sys.executable, "-c", code, str(tmp_path / "req.json"), str(store)],
                            capture_output=True, text=True, timeout=300)
    model_id = fitted.stdout.strip()
    assert model_id.startswith("m-"), fitted.stderr
    listed = scm("models", "--store", str(store), "list")
    assert model_id in listed.stdout and "disk" in listed.stdout
    pruned = scm("models", "--store", str(store), "prune", "--max-size", "0")
    assert pruned.returncode == 0 and model_id in pruned.stdout
    assert "no models" in scm("models", "--store", str(store), "list").stdout
