"""The one benchmark driver: each suite, side by side with DoWhy, into its one document.

    .venv-client/bin/python benchmarks/bench.py --suite fit|queries|wire|scaling|daemon|cluster|all
        [--worker-python .venv-worker/bin/python] [--rounds 5] [--quick] [--out-dir DIR]

(``make bench SUITE=fit``.) Run by the CLIENT interpreter (3.13, scm_client); the worker's
interpreter runs the workers and the DoWhy baselines (benchmarks/dowhy_side.py). Each suite
writes ``benchmarks/<SUITE>.md``, stamped with the commit measured (provenance.py), the
machine and its load before and after (machine.Run). Every target is judged by rounds.judge
on the median of ``--rounds`` paired rounds (at least 5 for a verdict). ``--quick`` is a
smoke run (small data, 2 rounds, documents marked "not a result", written to a scratch
directory unless ``--out-dir`` says otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "client")]

import machine  # noqa: E402 - benchmarks/ first on the path
from scm_client import Worker  # noqa: E402

SUITES = ("fit", "queries", "wire", "scaling", "daemon", "cluster")
T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[bench {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """What every suite is given: the worker's interpreter, the rounds, quick or not."""

    python: str
    rounds: int
    quick: bool
    out_dir: Path

    def verdict(self, met: bool) -> str:
        """A verdict judged outside rounds.judge (an absolute bound, a count): none on --quick."""
        return "not a result" if self.quick else "met" if met else "missed"

    def worker(self, *args: str, **options: Any) -> Worker:
        """A warm stdio worker without a store (a fit is never answered from disk)."""
        worker = Worker(self.python, worker_args=("--no-store", *args), start_timeout=600,
                        **options)
        worker.start()
        worker.wait_until_warm(600)
        return worker


def suite_module(name: str) -> Any:
    return __import__(f"suite_{name}")


def run_suite(name: str, ctx: Context, command: str) -> Path:
    """Measure one suite and write its document; its header is begun before measuring."""
    module = suite_module(name)
    run = machine.Run.begin()
    progress(f"suite {name}: {module.TITLE}")
    body = module.run(ctx, progress)
    lines = run.header(module.TITLE, command)
    if ctx.quick:
        lines += ["", "**QUICK SMOKE RUN (`--quick`): small data, few rounds — not a result.**"]
    out = ctx.out_dir / f"{name.upper()}.md"
    out.write_text("\n".join([*lines, "", *body]) + "\n")
    progress(f"suite {name}: wrote {out}")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    parser.add_argument("--worker-python", default=os.environ.get("SCM_WORKER_PYTHON")
                        or str(BENCH.parent / ".venv-worker" / "bin" / "python"))
    parser.add_argument("--rounds", type=int, default=None,
                        help="paired rounds (default 5; --quick 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, not a result")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where documents go (default benchmarks/; --quick: a scratch dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, report: Callable[[str], None] = progress) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="scm-bench-quick-")) if args.quick else None
    out_dir = args.out_dir or scratch or BENCH
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(os.path.abspath(args.worker_python), args.rounds or (2 if args.quick else 5), args.quick, out_dir)
    command = "make bench SUITE=" + args.suite + (" (--quick)" if args.quick else "")
    for name in SUITES if args.suite == "all" else (args.suite,):
        run_suite(name, ctx, command)
    report(f"documents in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
