"""Which commit a generated document's figures were measured at, and how far HEAD has moved since.

    python benchmarks/provenance.py            # each document: its commit, commits since, dirty or not
    python benchmarks/provenance.py --check    # the same; exit 1 if one is behind HEAD, dirty or unstamped

Figures describe the code they were measured on. Each generator (benchmarks/bench.py →
one document per suite: FIT.md, QUERIES.md, WIRE.md, SCALING.md, DAEMON.md, CLUSTER.md; the
soak → docs/soak.json → the soak block of docs/RELIABILITY.md) calls ``measured_at()`` *before* it measures and writes
``stamp()`` into its document: the full commit, whether tracked files differed from it
(a dirty tree: the figures belong to no commit), and how many commits came after it when
the document was written. ``lag()`` reads that line back, so a reader (or ``--check``)
learns when the commit is no longer HEAD. The generated files themselves do not count
as dirt: regenerating a document must not stamp it dirty.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parents[1]
#: benchmarks/bench.py's suites, each writing benchmarks/<SUITE>.md
SUITES = ("FIT", "QUERIES", "WIRE", "SCALING", "DAEMON", "CLUSTER")
#: The generated documents and their data: never counted as uncommitted changes.
GENERATED = (*(f"benchmarks/{name}.md" for name in SUITES), "benchmarks/fit.png", "benchmarks/scaling.png",
             "docs/RELIABILITY.md", "docs/soak.json", "docs/daemon_soak.json",
             "docs/reliability_figures.json", "docs/suite_times.json")
#: The documents that carry a stamp.
STAMPED = (*(f"benchmarks/{name}.md" for name in SUITES), "docs/RELIABILITY.md")
STAMP = re.compile(r"Measured at commit `(?P<commit>[0-9a-f]{40})`(?P<dirty> with uncommitted changes)?")


class Measured(TypedDict):
    commit: str
    dirty: bool


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def measured_at() -> Measured:
    """HEAD now, and whether tracked files (other than the generated ones) differ from it."""
    excluded = [f":(exclude){path}" for path in GENERATED]
    changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changes)}


def commits_since(commit: str) -> int | None:
    """Commits on HEAD after ``commit``; None if it is not an ancestor (or unknown here)."""
    try:
        git("merge-base", "--is-ancestor", commit, "HEAD")
        return int(git("rev-list", "--count", f"{commit}..HEAD"))
    except subprocess.CalledProcessError:
        return None


def stamp(measured: Measured) -> str:
    """The document's line: the commit measured, dirty or not, and commits after it right now."""
    dirty = " with uncommitted changes" if measured["dirty"] else ""
    since = commits_since(measured["commit"])
    later = "unknown (not an ancestor of HEAD)" if since is None else str(since)
    return (f"Measured at commit `{measured['commit']}`{dirty}; later commits when this was written: {later} "
            "(`python benchmarks/provenance.py` says how far behind HEAD it is now).")


def lag(document: Path) -> tuple[Measured, int | None] | None:
    """The stamp a document carries and the commits since it; None if it has no stamp."""
    found = STAMP.search(document.read_text())
    if found is None:
        return None
    measured: Measured = {"commit": found["commit"], "dirty": bool(found["dirty"])}
    return measured, commits_since(measured["commit"])


def describe(path: str) -> tuple[str, bool]:
    """One line about a document, and whether it describes HEAD exactly."""
    got = lag(ROOT / path)
    if got is None:  # written before stamps: the commit that last changed it is the best bound there is
        last = git("log", "-1", "--format=%H", "--", path)
        since = commits_since(last) if last else None
        return f"{path}: no 'Measured at commit' stamp; last changed by {last[:12] or '?'}, {since} commits ago", False
    measured, since = got
    behind = "not an ancestor of HEAD" if since is None else f"{since} commits behind HEAD"
    dirty = ", measured on a dirty tree" if measured["dirty"] else ""
    return f"{path}: measured at {measured['commit'][:12]}, {behind}{dirty}", since == 0 and not measured["dirty"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 unless every document was measured at HEAD")
    args = parser.parse_args()
    current = True
    for path in STAMPED:
        line, at_head = describe(path)
        print(line)
        current = current and at_head
    return 0 if current or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
