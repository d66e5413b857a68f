"""The order in which a suite's files start under xdist's ``--dist loadfile``: longest first.

xdist hands whole files, in collection order, to whichever process is free. Started last,
a long file runs on alone while the other process idles; started first, it leaves the
short files to even out where the two processes end (longest-processing-time-first).
"""

from __future__ import annotations

import pytest


def longest_files_first(items: list[pytest.Item], longest: tuple[str, ...]) -> None:
    """Sort ``items`` so that the files named in ``longest`` come first, in that order.

    Sorting is stable: each file's tests, and the files not named, keep their order. The
    names are a suite's longest files by the durations of a ``make test`` run
    (``PYTEST_ARGS='--durations=0'``); a name no longer collected is simply not matched.
    """
    rank = {name: index for index, name in enumerate(longest)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
