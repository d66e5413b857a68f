"""The `scm` progress line end to end: `scm fit` on a few dozen nodes, with and without a terminal.

stderr is a real pseudo-terminal (``pty``) in the first run and a pipe in the others;
stdout is always a pipe and must hold the result only, the same in every run.
"""

from __future__ import annotations

import json
import os
import pty
import random
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOTS, CHILDREN = 6, 24
#: one redraw of the line: "[####....] 12/24 fitting N17 · …"
FITTING = re.compile(r"\] (\d+)/(\d+) fitting")
ERASE = "\r\x1b[K"


def wide_request(rows: int = 300, seed: int = 7) -> dict[str, Any]:
    """6 roots and 24 children, each child linear in one or two earlier nodes."""
    rng = random.Random(seed)
    nodes = [f"N{i:02d}" for i in range(ROOTS + CHILDREN)]
    columns = {node: [rng.gauss(0, 1) for _ in range(rows)] for node in nodes[:ROOTS]}
    edges = []
    for i, node in enumerate(nodes[ROOTS:], start=ROOTS):
        parents = rng.sample(nodes[:i], k=1 + i % 2)
        edges += [[parent, node] for parent in parents]
        columns[node] = [sum(1.5 * columns[p][r] for p in parents) + rng.gauss(0, 0.1)
                         for r in range(rows)]
    return {"graph": {"nodes": nodes, "edges": edges}, "traces": columns,
            "config": {"seed": 3, "quality": "GOOD"}}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def scm_fit(env: dict[str, str], request: Path, *flags: str, terminal: bool = False) -> Run:
    argv = [sys.executable, "-m", "scm_client.cli", "fit", str(request), "--json", *flags]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, encoding="utf-8", env=env,
                              cwd=ROOT, timeout=600, check=False)
        return Run(done.returncode, done.stdout, done.stderr)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(leader, chunks), daemon=True)
    reader.start()
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode("utf-8")
    code = proc.wait(timeout=600)
    reader.join(timeout=30)
    os.close(leader)
    return Run(code, stdout, b"".join(chunks).decode("utf-8", "replace"))


def _read_all(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        chunks.append(chunk)


@pytest.fixture(scope="module")
def runs(worker_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    folder = tmp_path_factory.mktemp("progress")
    request = folder / "wide.json"
    request.write_text(json.dumps(wide_request()))
    env = {**os.environ, "SCM_WORKER_PYTHON": worker_python, "PYTHONIOENCODING": "utf-8",
           "XDG_CACHE_HOME": str(folder / "cache"), "TERM": "xterm"}
    return {
        "terminal": scm_fit(env, request, terminal=True),
        "pipe": scm_fit(env, request),
        "pipe -v": scm_fit(env, request, "-v"),
        "terminal --quiet": scm_fit(env, request, "--quiet", terminal=True),
    }


def fitted(run: Run) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert isinstance(result, dict) and result["model_id"].startswith("m-")
    return result


def test_scm_fit_on_a_terminal_draws_increasing_counts_to_the_total_and_erases_the_line(
    runs: dict[str, Run],
) -> None:
    run = runs["terminal"]
    fitted(run)
    counts = [(int(done), int(total)) for done, total in FITTING.findall(run.stderr)]
    assert counts, f"no progress line on the terminal:\n{run.stderr[-2000:]!r}"
    assert {total for _, total in counts} == {CHILDREN}
    dones = [done for done, _ in counts]
    assert dones == sorted(dones), "done counts only go up"
    assert dones[-1] == CHILDREN and len(set(dones)) >= 3, dones
    assert "ETA" in run.stderr and "elapsed" in run.stderr
    assert ERASE in run.stderr[run.stderr.rindex("fitting"):], "the line is erased at the end"
    assert "\x1b" not in run.stdout and "ETA" not in run.stdout


def test_scm_fit_without_a_terminal_shows_no_progress_and_the_same_result(
    runs: dict[str, Run],
) -> None:
    run = runs["pipe"]
    result = fitted(run)
    assert "fitting" not in run.stderr and "ETA" not in run.stderr and "\r" not in run.stderr
    on_terminal = fitted(runs["terminal"])
    assert result["scm"] == on_terminal["scm"] and result["validation"] == on_terminal["validation"]


def test_scm_fit_verbose_without_a_terminal_prints_plain_lines_and_quiet_prints_none(
    runs: dict[str, Run],
) -> None:
    verbose = runs["pipe -v"]
    fitted(verbose)
    plain = [line for line in verbose.stderr.splitlines() if line.startswith("scm: [")]
    assert plain and "\r" not in verbose.stderr
    assert f"{CHILDREN}/{CHILDREN} fitting" in "\n".join(plain), "the final count is always shown"
    quiet = runs["terminal --quiet"]
    fitted(quiet)
    assert not FITTING.search(quiet.stderr) and "ETA" not in quiet.stderr
