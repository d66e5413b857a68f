"""Tests that need root (to become ``nobody`` or give a file away): skipped on a
developer's machine, failed under CI.

CI runs the suites as root, so there a test that cannot get its privilege has not proven
its guarantee: it fails, naming what was missing, instead of skipping into a green run.
Without ``CI`` in the environment (a developer's unprivileged checkout) it skips.
Standard library plus pytest, for both interpreters.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

Test = TypeVar("Test", bound=Callable[..., Any])


def missing_privilege(*, setpriv: bool) -> str | None:
    """What this process lacks to run a root test (None if nothing): root, and ``setpriv``
    when the test changes uid."""
    if os.geteuid() != 0:
        return "not running as root"
    if setpriv and shutil.which("setpriv") is None:
        return "no setpriv on PATH"
    return None


def under_ci() -> bool:
    return bool(os.environ.get("CI"))


def needs_root(why: str, *, setpriv: bool = True) -> Callable[[Test], Test]:
    """A decorator: the test runs with the privilege, else skips, or fails under CI."""
    missing = missing_privilege(setpriv=setpriv)
    ci = under_ci()

    def decorate(test: Test) -> Test:
        return gate(test, missing=missing, why=why, ci=ci)

    return decorate


def gate(test: Test, *, missing: str | None, why: str, ci: bool) -> Test:
    """``test`` itself when nothing is missing; a skip, or a failure when ``ci``."""
    if missing is None:
        return test
    if not ci:
        skipped: Test = pytest.mark.skip(reason=f"{why}: {missing}")(test)
        return skipped

    @functools.wraps(test)
    def fails(*args: Any, **kwargs: Any) -> None:
        pytest.fail(f"CI is set, and this test could not run: {why}: {missing}", pytrace=False)

    return fails  # type: ignore[return-value]


def unprivileged(reason: str) -> None:
    """Inside a test: fail when ``CI`` is set (it must run there), else skip."""
    if under_ci():
        pytest.fail(f"CI is set, and this test could not run: {reason}", pytrace=False)
    pytest.skip(reason)
