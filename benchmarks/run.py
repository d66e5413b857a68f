"""scm-worker benchmarks: every case measured side by side in one run, on the same data.

    .venv-client/bin/python benchmarks/run.py [--worker-python .venv-worker/bin/python]

Run by the CLIENT interpreter (Python 3.13, scm_client, standard library only). The
DoWhy baselines run under the worker interpreter, in ``benchmarks/inprocess.py`` (warm,
in-process DoWhy) and ``benchmarks/process_per_call.py`` (the old one-process-per-request
design); both build their data with ``benchmarks/datagen.py`` and the driver checks
their checksums against its own. Progress goes to stderr, the table to stdout, and
``benchmarks/RESULTS.md``, ``results.json`` and ``results.png`` are (re)written.

Speed is reported, not asserted: the exit status is 0 whether targets are met or
missed (and 1 only if the benchmark itself failed). This machine may be shared and
noisy, so baselines and worker calls are interleaved and only ratios measured in the
same run are compared; the load average is recorded with the results.

A smoke run of every case (fewer repetitions, a few minutes; output elsewhere):
``benchmarks/run.py --quick --out-dir /tmp/bench``. The figures are stamped with the commit
they were measured at (benchmarks/provenance.py).

Layout: this driver parses the options and writes the outputs; ``bench.py`` holds the
run's shared state and the order of the cases; one module per case (``case_startup``,
``case_process_per_call``, ``case_round_trips``, ``case_cache``, ``case_big_dag``,
``case_contention``, ``case_small_graphs``, ``case_daemon``); ``report.py`` writes RESULTS.md;
``common.py`` (timing, rows, formats) and ``procstat.py`` (/proc: memory, CPU share) are
what the cases share.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import provenance
from bench import Bench
from common import T0, add_worker_python, progress
from machine import load_average
from report import ordered, text_table, write_results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, and the repetitions of a full or a --quick run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_worker_python(parser)
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions: a smoke run of the whole suite"
    )
    parser.add_argument(
        "--no-reference-fit",
        dest="reference_fit",
        action="store_false",
        help="skip the in-process scm_worker fit_model reference run of case 2",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.25,
        help="before each case, wait while other processes keep more than this fraction of the "
        "CPU busy (default 0.25)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=120, help="longest wait for a quiet machine per case (s)"
    )
    parser.add_argument(
        "--max-wait-total", type=float, default=600, help="longest total wait per run (s)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=BENCH,
        help="where RESULTS.md, results.json and results.png go (default benchmarks/; "
        "a smoke run: --quick --out-dir /tmp/bench)",
    )
    args = parser.parse_args(argv)
    reps = {
        "ppc_runs": 5,
        "warm_per_ppc": 2,
        "pings": 2000,
        "samples": 50,
        "cache_hits": 5,
        "dag_runs": 3,
        "oversubscribed_graphs": 8,
        "contention_fits": 3,
        "daemon_commands": 10,
        "daemon_cancels": 12,
    }
    if args.quick:
        reps = {
            "ppc_runs": 2,
            "warm_per_ppc": 2,
            "pings": 200,
            "samples": 10,
            "cache_hits": 2,
            "dag_runs": 1,
            "oversubscribed_graphs": 2,
            "contention_fits": 2,
            "daemon_commands": 3,
            "daemon_cancels": 2,
        }
    for key, value in reps.items():
        setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    measured = provenance.measured_at()  # before measuring: the code these figures describe
    if not Path(args.worker_python).exists():
        print(
            f"worker interpreter not found: {args.worker_python} (run `make venvs` or pass --worker-python)",
            file=sys.stderr,
        )
        return 1

    command = shlex.join(
        [
            os.path.relpath(sys.executable, ROOT)
            if sys.executable.startswith(str(ROOT))
            else sys.executable,
            "benchmarks/run.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    bench = Bench(args)
    bench.details["measured"] = measured
    progress(
        f"data checksums {bench.checksums}; worker python {args.worker_python}; load {load_average()}"
    )
    results = bench.run()
    elapsed = time.perf_counter() - T0

    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_json = args.out_dir / "results.json"
    results_json.write_text(
        json.dumps(
            {
                "rows": [asdict(r) for r in ordered(results.rows)],
                "details": results.details,
                "quick": args.quick,
            },
            indent=1,
        )
    )
    plot = subprocess.run(
        [args.worker_python, str(BENCH / "plot.py"), str(results_json), str(args.out_dir / "results.png")],
        check=False,
        cwd=ROOT,
    )
    write_results(bench, results, command, elapsed, plot.returncode == 0, args.out_dir)
    print(text_table(ordered(results.rows)))
    targeted = [r for r in results.rows if r.met is not None]
    print(
        f"\n{sum(bool(r.met) for r in targeted)} of {len(targeted)} targets met; "
        f"written to {os.path.relpath(args.out_dir / 'RESULTS.md')} in {elapsed / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
