"""docs/RELIABILITY.md's counts and figures are the tests' own, not copied by hand.

The counts the document states (path-like ids, methods, malformed lines) are read from the
lists the tests run; each figures block (the two soaks, the fault figures, the suite times)
must be exactly what its script renders from the committed report, stamped with the report's
commit; every test the document names as a proof exists. No worker is started.
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
import reliability_figures  # noqa: E402 - benchmarks/: the fault figures' and suite times' renderer
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


def generated_block(begin: str, end: str, report_name: str) -> tuple[str, str, dict]:
    """The block between the markers, its stamp line, and the committed report it renders."""
    report = json.loads((ROOT / "docs" / report_name).read_text())
    block = DOC[DOC.index(begin):DOC.index(end) + len(end)]
    stamp = provenance.STAMP.search(block)
    assert stamp is not None, f"the block of {report_name} carries no 'Measured at commit' stamp"
    assert stamp["commit"] == report["measured"]["commit"] and bool(stamp["dirty"]) == report["measured"]["dirty"]
    return block, next(line for line in block.splitlines() if provenance.STAMP.search(line)), report


def test_the_fault_figures_block_is_what_the_committed_report_renders_to() -> None:
    block, stamp, report = generated_block(reliability_figures.FAULTS_BEGIN, reliability_figures.FAULTS_END,
                                           "reliability_figures.json")
    assert block == reliability_figures.render_faults(report, stamp), \
        "regenerate: python benchmarks/reliability_figures.py"


def test_the_suite_times_block_is_what_the_committed_report_renders_to() -> None:
    block, stamp, report = generated_block(reliability_figures.SUITES_BEGIN, reliability_figures.SUITES_END,
                                           "suite_times.json")
    assert block == reliability_figures.render_suites(report, stamp), \
        "regenerate: python benchmarks/reliability_figures.py --suite-log LOG"


#: `tests/x/test_y.py::name`, `test_y.py::name` or `::name` (of the file named last in the row),
#: or a file alone; a name ending in … is abridged
PROOF = re.compile(r"`(?P<file>tests/[\w/]+\.py|test_\w+\.py)?(?:::(?P<name>\w+)(?P<abridged>…)?)?")


def test_every_test_named_as_a_proof_exists() -> None:
    missing = []
    spelled_out: dict[str, Path] = {}  # a bare file name means the last path spelled out with it
    for row in (line for line in DOC.splitlines() if line.startswith("| ")):
        file: Path | None = None
        for found in PROOF.finditer(row):
            if found["file"]:
                file = resolve(found["file"], spelled_out)
            if not found["name"]:
                continue
            assert file is not None, f"::{found['name']} follows no file in: {row[:120]}"
            rest = r"\w*" if found["abridged"] else ""  # `::test_parse_graph_…`: a name that begins so
            if not re.search(rf"^(?:async )?def {found['name']}{rest}\(", file.read_text(), re.MULTILINE):
                missing.append(f"{file.relative_to(ROOT)}::{found['name']}")
    assert missing == [], missing


def resolve(name: str, spelled_out: dict[str, Path]) -> Path:
    """The test file a proof names: its path, or a bare name's last spelled-out path or only match."""
    if "/" in name:
        path = spelled_out[Path(name).name] = ROOT / name
    else:
        found = sorted(ROOT.glob(f"tests/*/{name}"))
        path = spelled_out.get(name) or (found[0] if len(found) == 1 else ROOT / name)
    assert path.exists(), f"{name} names no test file (or several: spell out its path)"
    return path
