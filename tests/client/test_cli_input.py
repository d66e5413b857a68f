"""`scm` input files: one rule for NaN and Infinity, whichever command reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from scm_client.cli import common, demo


def test_demo_and_every_command_read_nan_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"graph": {"nodes": ["X"], "edges": []}, "traces": {"X": [1.0, NaN]}}')
    assert common.read_json(path)["traces"]["X"] == [1.0, None]
    assert demo.read_request(path)["traces"]["X"] == [1.0, None]


@pytest.mark.parametrize("token", ["Infinity", "-Infinity"])
def test_demo_refuses_infinity_as_every_command_does(tmp_path: Path, token: str) -> None:
    path = tmp_path / "inf.json"
    path.write_text(f'{{"graph": {{"nodes": ["X"], "edges": []}}, "traces": {{"X": [{token}]}}}}')
    with pytest.raises(common.InputError, match="Infinity"):
        common.read_json(path)
    with pytest.raises(demo.Unreadable, match="Infinity"):
        demo.read_request(path)
