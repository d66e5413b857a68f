"""`scm` input files: one request reader, one rule for JSON, NaN and Infinity, whichever
command reads the request (fit, sample, the questions, report, demo, batch's files and
batch's JSONL lines). The reader fails before any worker is needed: ``--python`` names an
interpreter that does not exist, and nothing starts it.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest
from scm_client import Worker
from scm_client.cli import common, demo

GOOD = '{"graph": {"nodes": ["X"], "edges": []}, "traces": {"X": [1.0, NaN]}}'
#: the JSON error every reader must name the same way: "<where> is not valid JSON: <why>"
MALFORMED = '{graph: 1}'
WHY = "is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"
NO_WORKER = ("--python", "/nonexistent/python3.11")


def test_every_reader_reads_nan_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(GOOD)
    jsonl = tmp_path / "nan.jsonl"
    jsonl.write_text(GOOD + "\n\n" + GOOD + "\n")
    assert common.read_json(path)["traces"]["X"] == [1.0, None]
    assert common.load_request(path).traces["X"] == [1.0, None]
    lines = common.read_requests(jsonl)
    assert [r.traces["X"] for r in lines] == [[1.0, None]] * 2
    assert [r.name for r in lines] == ["line 1", "line 3"]  # blank lines count, as an editor's
    assert [r.name for r in common.read_requests(tmp_path)] == ["nan"]


@pytest.mark.parametrize("token", ["Infinity", "-Infinity"])
def test_every_reader_refuses_infinity(tmp_path: Path, token: str) -> None:
    text = f'{{"graph": {{"nodes": ["X"], "edges": []}}, "traces": {{"X": [{token}]}}}}'
    path = tmp_path / "inf.json"
    path.write_text(text)
    jsonl = tmp_path / "inf.jsonl"
    jsonl.write_text(GOOD + "\n" + text + "\n")
    with pytest.raises(common.InputError, match=f"{path}: {token} is not a value"):
        common.load_request(path)
    with pytest.raises(common.InputError, match=f"{jsonl}:2: {token} is not a value"):
        common.read_requests(jsonl)


def malformed_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED)
    return path


def run_scm(*argv: str) -> tuple[int, str]:
    """The real `scm` command; (exit code, stderr)."""
    done = subprocess.run([sys.executable, "-m", "scm_client.cli", *argv, *NO_WORKER],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


@pytest.mark.parametrize("command", [
    ("fit",), ("sample",), ("effect", "--target", "X", "--do", "X=1"), ("strength", "--target", "X"),
])
def test_a_malformed_request_file_is_refused_the_same_way_by_every_command(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    path = malformed_file(tmp_path)
    code, err = run_scm(command[0], str(path), *command[1:])
    assert (code, err) == (2, f"scm: error: {path} {WHY}\n")


def test_report_refuses_a_malformed_request_file_the_same_way(
        tmp_path: Path) -> None:
    path = malformed_file(tmp_path)
    code, err = run_scm("report", str(path), "--out", str(tmp_path / "r.html"))
    assert (code, err) == (2, f"scm: error: {path} {WHY}\n")


def test_batch_refuses_a_malformed_jsonl_line_the_same_way(
        tmp_path: Path) -> None:
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text(GOOD + "\n" + MALFORMED + "\n")
    code, err = run_scm("batch", str(jsonl), "--out", str(tmp_path / "out.jsonl"))
    assert (code, err) == (2, f"scm batch: {jsonl}:2 {WHY}\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    malformed_file(folder)
    code, err = run_scm("batch", str(folder), "--out", str(tmp_path / "out.jsonl"))
    assert (code, err) == (2, f"scm batch: {folder / 'bad.json'} {WHY}\n")


def test_batch_refuses_a_jsonl_line_that_is_no_request_as_fit_refuses_the_file(
        tmp_path: Path) -> None:
    """The same checks of the request's members, not only of its JSON."""
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text('{"graph": {"nodes": ["X"], "edges": []}}\n')
    code, err = run_scm("batch", str(jsonl), "--out", str(tmp_path / "out.jsonl"))
    assert code == 2 and err == (f"scm batch: {jsonl}:1: the request has no 'traces' member "
                                 f"(expected graph, traces, config)\n")
    path = tmp_path / "no_traces.json"
    path.write_text('{"graph": {"nodes": ["X"], "edges": []}}')
    code, err = run_scm("fit", str(path))
    assert err == (f"scm: error: {path}: the request has no 'traces' member "
                   f"(expected graph, traces, config)\n")


def test_demo_shows_a_malformed_fixture_as_every_command_refuses_it(tmp_path: Path) -> None:
    """Read before the worker is asked anything: this Worker is never started."""
    path = malformed_file(tmp_path)
    out = io.StringIO()
    outcome = demo.fixture(Worker(python=NO_WORKER[1]), path, out)
    assert outcome.broken and outcome.outcome == "unreadable file"
    assert f"unreadable: {path} {WHY}" in out.getvalue()


def test_mechanism_options_merge_over_the_request_config() -> None:
    """--mechanism NODE=NAME or NODE=NAME:DEGREE, over config.mechanisms; the names are the
    worker's to check."""
    parser = argparse.ArgumentParser()
    common.add_input_options(parser)
    args = parser.parse_args(["--mechanism", "X=normal", "--mechanism", "W=polynomial:3"])
    request = common.Request("r", {"nodes": ["X"], "edges": []}, {},
                             {"mechanisms": {"Y": "linear", "X": "auto"}})
    assert common.fit_config(request, args)["mechanisms"] == {
        "Y": "linear", "X": "normal", "W": {"model": "polynomial", "degree": 3}}
    for bad in ("W=polynomial:x", "W", "=linear"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--mechanism", bad])
