"""`scm effect|strength|influence|anomaly|change` as real subprocesses on the real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import CHAIN, FIXTURES, scm

#: every run answered by one warm daemon, as in a user's shell (support.daemons.cli_daemon)
pytestmark = pytest.mark.usefixtures("cli_daemon")


def test_effect_prints_the_chain_product_with_an_interval() -> None:
    done = scm("effect", CHAIN, "--target", "Z", "--do", "X=1", "--ref", "X=0", "--confidence", "0.9",
               "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["effect"] == pytest.approx(6.0, rel=0.05)
    assert result["interval"][0] <= result["effect"] <= result["interval"][1]


def test_strength_ranks_parents_in_a_table() -> None:
    done = scm("strength", str(FIXTURES / "multi_parent.json"), "--target", "Z", "--seed", "1")
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.strip().startswith(("X", "Y"))]
    assert [line[0] for line in lines] == ["Y", "X"]  # Z = 1.5 X + 2.5 Y with equal spreads


def test_anomaly_and_change_tables(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("X,Y,Z\n4.0,8.0,24.0\n")
    anomaly = scm("anomaly", CHAIN, "--target", "Z", "--rows", str(rows), "--seed", "1")
    assert anomaly.returncode == 0, anomaly.stderr
    assert "main cause" in anomaly.stdout and " X " in anomaly.stdout.splitlines()[-1]
    chain = json.loads(Path(CHAIN).read_text())["traces"]
    old = {k: v[:300] for k, v in chain.items()}
    new = {**{k: v[300:600] for k, v in chain.items()}}
    new["Z"] = [z + 2.0 for z in new["Z"]]
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    change = scm("change", CHAIN, "--target", "Z", "--old", str(tmp_path / "old.json"),
                 "--new", str(tmp_path / "new.json"), "--seed", "1")
    assert change.returncode == 0, change.stderr
    first_row = [line for line in change.stdout.splitlines() if line.strip()[:1] in {"X", "Y", "Z"}][0]
    assert first_row.split()[0] == "Z"


def test_unknown_target_exits_with_usage_code() -> None:
    done = scm("influence", CHAIN, "--target", "Q")
    assert done.returncode == 2
    assert "target" in done.stderr


def test_strength_and_anomaly_tables_show_each_value_with_its_interval(tmp_path: Path) -> None:
    """``--confidence``: every value as ``median [lo, hi]``, the bootstrap's (refit, 4 replicates)."""
    done = scm("strength", str(FIXTURES / "multi_parent.json"), "--target", "Z", "--seed", "1",
               "--confidence", "0.9", "--num-bootstrap", "4")
    assert done.returncode == 0, done.stderr
    rows = [line.split(maxsplit=1) for line in done.stdout.splitlines()
            if line.strip().startswith(("X", "Y"))]
    assert [row[0] for row in rows] == ["Y", "X"]
    for _, cell in rows:
        value, low, high = _estimate(cell)
        assert low <= value <= high
    (tmp_path / "rows.csv").write_text("X,Y,Z\n4.0,8.0,24.0\n")
    anomaly = scm("anomaly", CHAIN, "--target", "Z", "--rows", str(tmp_path / "rows.csv"),
                  "--seed", "1", "--confidence", "0.9", "--num-bootstrap", "4", "--no-refit")
    assert anomaly.returncode == 0, anomaly.stderr
    assert anomaly.stdout.splitlines()[-1].count("[") == 3  # X, Y and Z, each with its interval


def _estimate(cell: str) -> tuple[float, float, float]:
    """``0.42 [0.31, 0.55]`` → (0.42, 0.31, 0.55)."""
    value, bounds = cell.strip().split(" [")
    low, high = bounds.rstrip("]").split(", ")
    return float(value), float(low), float(high)
