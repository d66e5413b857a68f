"""docs/RELIABILITY.md's counts and soak figures are the tests' own, not copied by hand.

The counts the document states (path-like ids, methods, malformed lines) are read from the
lists the tests run; the soak block must be exactly what benchmarks/soak_block.py renders
from the committed soak report, stamped with the report's commit. No worker is started.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import test_malformed_input
import test_security

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "benchmarks"))  # last: it shadows nothing
import provenance  # noqa: E402 - benchmarks/: the stamp's format
import soak_block  # noqa: E402 - benchmarks/: the block's renderer

DOC = (ROOT / "docs" / "RELIABILITY.md").read_text()


def stated(pattern: str) -> int:
    """The one number the document states where ``pattern`` (with a (\\d+) group) matches."""
    found = re.findall(pattern, DOC)
    assert len(found) == 1, f"{pattern!r} matches {found} in docs/RELIABILITY.md"
    return int(found[0])


def test_the_path_like_ids_and_methods_counted_are_the_ones_the_test_sends() -> None:
    assert stated(r"(\d+) path-like ids") == len(test_security.PATHS)
    assert stated(r"× the (\d+) methods that take one") == len(test_security.MODEL_ID_METHODS)


def test_the_malformed_lines_counted_are_the_ones_sent_in_one_write() -> None:
    assert stated(r"all of them, (\d+) lines, in \*\*one\*\* write") == len(test_malformed_input.MALFORMED_CASES)


def test_the_soak_block_is_what_the_committed_report_renders_to() -> None:
    report = json.loads((ROOT / "docs" / "soak.json").read_text())
    start, end = DOC.index(soak_block.BEGIN), DOC.index(soak_block.END) + len(soak_block.END)
    block = DOC[start:end]
    stamp = provenance.STAMP.search(block)
    assert stamp is not None, "the soak block carries no 'Measured at commit' stamp"
    assert stamp["commit"] == report["measured"]["commit"] and bool(stamp["dirty"]) == report["measured"]["dirty"]
    stamp_line = next(line for line in block.splitlines() if provenance.STAMP.search(line))
    assert block == soak_block.render(report, stamp_line), "regenerate it: python benchmarks/soak_block.py"


def test_the_daemon_soak_block_is_what_the_committed_report_renders_to() -> None:
    report = json.loads((ROOT / "docs" / "daemon_soak.json").read_text())
    start = DOC.index(soak_block.DAEMON_BEGIN)
    end = DOC.index(soak_block.DAEMON_END) + len(soak_block.DAEMON_END)
    block = DOC[start:end]
    stamp = provenance.STAMP.search(block)
    assert stamp is not None, "the daemon soak block carries no 'Measured at commit' stamp"
    assert stamp["commit"] == report["measured"]["commit"]
    stamp_line = next(line for line in block.splitlines() if provenance.STAMP.search(line))
    assert block == soak_block.render_daemon(report, stamp_line), "regenerate: python benchmarks/soak_block.py"
