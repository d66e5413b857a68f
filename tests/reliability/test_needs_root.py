"""A root test that cannot get root skips on a developer's machine and fails under CI.

The gate of tests/support/privileges.py, driven with each answer to "what is missing?"
(this machine runs as root, so the missing privilege is given, not taken away).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import privileges


def a_root_test() -> Callable[[str], str]:
    """A fresh test function each time (a skip mark is put on the function itself)."""
    def test(tmp: str) -> str:
        return tmp
    return test


def test_a_root_test_runs_untouched_when_nothing_is_missing() -> None:
    for ci in (False, True):
        test = a_root_test()
        assert privileges.gate(test, missing=None, why="x", ci=ci) is test


def test_a_root_test_without_root_skips_outside_ci() -> None:
    gated = privileges.gate(a_root_test(), missing="not running as root", why="giving a file away", ci=False)
    marks = [m for m in getattr(gated, "pytestmark", []) if m.name == "skip"]
    assert [m.kwargs["reason"] for m in marks] == ["giving a file away: not running as root"]


def test_a_root_test_without_root_fails_under_ci() -> None:
    gated = privileges.gate(a_root_test(), missing="no setpriv on PATH", why="becoming nobody", ci=True)
    assert not [m for m in getattr(gated, "pytestmark", []) if m.name == "skip"]
    with pytest.raises(pytest.fail.Exception, match="CI is set.*becoming nobody: no setpriv on PATH"):
        gated("/tmp")


def test_a_check_inside_a_test_fails_under_ci_and_skips_without(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        privileges.unprivileged("no interpreter that nobody can run")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        privileges.unprivileged("no interpreter that nobody can run")
