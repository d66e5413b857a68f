"""The `scm` command line: argument parsing, input files, exit codes, and doctor/fit/sample.

Standard library only. Every command starts one Worker, does its work and closes it;
`scm demo` lives in demo.py. Output is plain text (``--json`` for the raw result), errors
are one paragraph on stderr with an exit code per error class (see ``EPILOG``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import (
    _format,
    _pythons,
    cli_batch,
    cli_models,
    cli_questions,
    cli_report,
    cli_setup,
    demo,
    provision,
)
from ._locate import ENV_VAR, VENV, fix_hint, locate
from ._pythons import run_quietly
from .errors import InsufficientData, InvalidParams, LimitExceeded, ValidationFailed, WorkerError
from .results import FitResult
from .worker import Worker

log = logging.getLogger("scm_client.cli")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VALIDATION = 3
EXIT_INSUFFICIENT = 4

EPILOG = """\
exit codes:
  0  success
  1  any other failure: the worker could not start, crashed or timed out; DoWhy failed;
     the query is unsupported (e.g. counterfactuals on a non-invertible mechanism)
  2  usage error or invalid input: bad arguments, unreadable files, a request the worker
     rejects as invalid (the message names the field) or that exceeds its limits
  3  validation failed: the fitted mechanisms score below the R² threshold on held-out rows
  4  insufficient data: fewer complete rows than config.min_samples

The worker interpreter is --python, else $SCM_WORKER_PYTHON, else a checkout's .venv-worker/,
else the environment `scm setup` built. Run `scm doctor` when the worker does not start."""

WORKER_PACKAGES = ("dowhy", "pandas", "numpy", "scikit-learn", "networkx", "jsonrpcserver")
QUALITIES = ("GOOD", "BETTER", "BEST")


class InputError(Exception):
    """A problem with the command's own input (files, arguments): exit code 2."""


# -- input files -----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A fit request as the wire wants it: graph {nodes, edges}, traces {node: column}, config."""

    name: str
    graph: Any
    traces: Any
    config: dict[str, Any] = field(default_factory=dict)


def read_json(path: Path) -> Any:
    """Parse a JSON file; NaN means missing (null), Infinity is refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text, parse_constant=lambda name: _json_constant(name, path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def _json_constant(name: str, path: Path) -> None:
    """NaN → None (missing); Infinity and -Infinity are refused."""
    if name != "NaN":
        raise InputError(f"{path}: {name} is not a value the worker accepts (use a finite number or null)")


def load_request(path: Path) -> Request:
    """REQUEST.json: {graph, traces, config?, name?}, as in tests/fixtures/."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a request must be a JSON object with graph, traces and config members")
    for member in ("graph", "traces"):
        if member not in data:
            raise InputError(f"{path}: the request has no {member!r} member (expected graph, traces, config)")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise InputError(f"{path}: config must be an object of fit settings, got {type(config).__name__}")
    traces = data["traces"]
    traces = columns_of(traces, f"{path}: traces") if isinstance(traces, list) else traces
    return Request(str(data.get("name") or path.stem), graph_of(data["graph"], path), traces, config)


def load_parts(graph_path: Path, traces_path: Path, config_path: Path | None) -> Request:
    """--graph G.json --traces T.csv|T.json [--config C.json]."""
    config = read_json(config_path) if config_path else {}
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: the config must be a JSON object of fit settings")
    return Request(traces_path.stem, graph_of(read_json(graph_path), graph_path), read_table(traces_path, "traces"),
                   config)


def graph_of(value: Any, path: Path) -> Any:
    """{nodes, edges} as given (the worker checks it); an edge list gets its nodes in order of appearance."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        pairs = [edge for edge in value if isinstance(edge, list) and len(edge) == 2]
        nodes = list(dict.fromkeys(node for edge in pairs for node in edge))
        return {"nodes": nodes, "edges": value}
    raise InputError(f"{path}: the graph must be {{\"nodes\": [...], \"edges\": [[parent, child], ...]}} "
                     f"or a list of [parent, child] edges")


def read_table(path: Path, field: str) -> dict[str, list[Any]]:
    """Columns from a CSV (header row of node names) or JSON (columns or rows) file."""
    if path.suffix.lower() == ".csv":
        return read_csv(path, field)
    return columns_of(read_json(path), str(path))


def columns_of(data: Any, where: str) -> dict[str, list[Any]]:
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return data
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        names = list(dict.fromkeys(name for row in data for name in row))
        return {name: [row.get(name) for row in data] for name in names}
    raise InputError(f"{where}: expected an object of columns {{node: [values]}} or an array of row objects")


def read_csv(path: Path, field: str) -> dict[str, list[Any]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            return _csv_columns(csv.reader(stream), path, field)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not valid CSV: {exc}") from None


def _csv_columns(reader: Any, path: Path, field: str) -> dict[str, list[Any]]:
    header = [name.strip() for name in next(reader, [])]
    if not header or not all(header):
        raise InputError(f"{path}: the first row must name every column (the graph's nodes)")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(f"{path}: duplicate column names {duplicates}")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{path}, line {reader.line_num}: {len(row)} cells, but the header has {len(header)}")
        for name, cell in zip(header, row, strict=True):
            columns[name].append(csv_cell(cell, f"{field}.{name}[{len(columns[name])}]"))
    return columns


def csv_cell(text: str, where: str) -> Any:
    """int, float, true/false, else the string; an empty cell (or NaN) is missing."""
    text = text.strip()
    if not text:
        return None
    value = scalar(text)
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None
        raise InputError(f"{where}: {text!r} is infinite; the worker accepts finite numbers only")
    return value


def scalar(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


# -- interventions ---------------------------------------------------------------------


def _split_assignment(text: str) -> tuple[str, str]:
    node, sep, value = text.partition("=")
    if not sep or not node.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NODE=VALUE, got {text!r}")
    return node.strip(), value.strip()


def hard_intervention(text: str) -> dict[str, Any]:
    """--do X=5: a number, else true/false, else a category."""
    node, raw = _split_assignment(text)
    value = scalar(raw)
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be finite")
    return {"type": "hard", "node": node, "value": value}


def soft_intervention(transform: str) -> Callable[[str], dict[str, Any]]:
    """--shift Y=1.0 (Y + 1.0) or --scale Y=2.0 (Y × 2.0)."""

    def parse(text: str) -> dict[str, Any]:
        node, raw = _split_assignment(text)
        value = scalar(raw)
        if isinstance(value, (bool, str)) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: --{transform} needs a finite number")
        return {"type": "soft", "node": node, "transform": transform, "param": value}

    parse.__name__ = transform  # argparse names the type in its error messages
    return parse


# -- worker sessions -------------------------------------------------------------------


def open_worker(args: argparse.Namespace, warm_up: bool = True) -> Worker:
    """One-shot commands skip the worker's warm-up fit: their own first fit pays the same start-up."""
    return Worker(args.python, request_timeout=args.timeout, on_progress=_log_progress,
                  worker_args=() if warm_up else ("--no-warmup",))


def _log_progress(params: dict[str, Any]) -> None:
    log.debug("progress: %s %s/%s %s", params.get("stage"), params.get("done"), params.get("total"),
              params.get("node") or "")


def fit_config(request: Request, args: argparse.Namespace) -> dict[str, Any]:
    """The request's config with --seed / --quality / --no-validate applied."""
    config = dict(request.config)
    if args.seed is not None:
        config["seed"] = args.seed
    if args.quality is not None:
        config["quality"] = args.quality
    if args.no_validate:
        config["validate_r2"] = False
    return config


def fit_request(worker: Worker, request: Request, config: dict[str, Any]) -> FitResult:
    """Send the request as given, so the worker's checks name the offending field."""
    params = {"graph": request.graph, "traces": request.traces, "config": config}
    return FitResult.from_wire(worker.call("fit", params))


def request_from_args(args: argparse.Namespace) -> Request:
    if args.request is not None:
        if args.graph or args.traces or args.config:
            raise InputError("give either REQUEST.json or --graph/--traces/--config, not both")
        return load_request(args.request)
    if args.graph is None or args.traces is None:
        raise InputError("give REQUEST.json, or both --graph G.json and --traces T.csv")
    return load_parts(args.graph, args.traces, args.config)


# -- commands --------------------------------------------------------------------------


def cmd_fit(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    with open_worker(args, warm_up=False) as worker:
        result = fit_request(worker, request, fit_config(request, args))
    print(json.dumps(result.raw, indent=2) if args.json else _format.fit_summary(result))
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    interventions = args.interventions or []
    kind = args.kind or ("interventional" if interventions else "observational")
    if kind == "counterfactual" and args.observed is None:
        raise InputError("--kind counterfactual needs --observed ROWS.json|ROWS.csv (the factual rows)")
    observed = read_table(args.observed, "observed") if args.observed is not None else None
    query_nodes = [n.strip() for n in args.query_nodes.split(",") if n.strip()] if args.query_nodes else None
    with open_worker(args, warm_up=False) as worker:
        fit = fit_request(worker, request, fit_config(request, args))
        sample = worker.sample(fit, kind, interventions, observed=observed, num_samples=args.num_samples,
                               query_nodes=query_nodes, seed=args.seed,
                               return_samples=args.json or kind == "counterfactual")
    if args.json:
        print(json.dumps(sample.raw, indent=2))
        return EXIT_OK
    print(f"fitted {fit.model_id}: {fit.status}, mean R² {_format.num(fit.mean_r2, 4)} {_format.mark(fit.passed)}")
    print(_format.sample_heading(sample) + "\n")
    print(_format.statistics_table(sample))
    if kind == "counterfactual" and sample.samples:
        print("\ncounterfactual values per observed row\n" + _format.rows_table(sample.samples))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of *.json requests (run from the project root, "
                         f"or pass DIR)")
    return demo.run(directory, lambda: open_worker(args), sys.stdout)


# -- doctor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def show(check: Check) -> Check:
    print(f"  {'ok' if check.ok else 'missing':8} {check.name:18} {check.detail}", flush=True)
    return check


def cmd_doctor(args: argparse.Namespace) -> int:
    print("scm doctor")
    checks = [show(Check("client python", True, f"{_format_version()} ({sys.executable})"))]
    checks += [show(find_interpreter(version)) for version in ("3.11", "3.13")]
    python, located = locate_worker_python(args.python)
    env_checks = [show(check) for check in located]
    if python is not None:
        checks += [show(check) for check in worker_packages(python)]
        env_checks.append(show(pin_check(python)))
    handshake = [show(check) for check in live_handshake(args)]
    checks += env_checks + handshake
    if all(check.ok for check in env_checks + handshake):
        print("\nready: the client can start the worker and talk to it")
        return EXIT_OK
    print("\nnot ready: the client cannot drive the worker")
    for fix in dict.fromkeys(check.fix for check in checks if not check.ok and check.fix):
        print(f"  fix: {fix}")
    return EXIT_ERROR


def _format_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def python_version_of(python: str) -> str | None:
    """The full version if ``python`` actually runs (a pyenv shim may exist and fail)."""
    found = _pythons.probe(python, "")
    return found.version if found is not None else None


def find_interpreter(version: str) -> Check:
    """The interpreter `scm setup` would use for X.Y: PATH if it really runs, pyenv, uv."""
    search = _pythons.find_python(version, uv=provision.find_uv())
    if search.found is None:
        return Check(f"python{version}", False, "; ".join(search.notes),
                     f"install Python {version} (e.g. `pyenv install {version}`)")
    found = search.found
    return Check(f"python{version}", True, "; ".join([f"{found.version} ({found.path}, {found.how})", *search.notes]))


def locate_worker_python(explicit: str | None) -> tuple[str | None, list[Check]]:
    """The worker interpreter, how it was found, and the provisioned environment's key."""
    try:
        located = locate(explicit)
    except WorkerError as exc:
        return None, [Check("worker python", False, str(exc).splitlines()[0], fix_hint())]
    version = python_version_of(located.python)
    if version is None:
        return None, [Check("worker python", False, f"{located.python} (from {located.how}) does not run", fix_hint())]
    note = "" if version.startswith("3.11.") else " — the worker is pinned to Python 3.11"
    checks = [Check("worker python", True, f"{version} ({located.python}, from {located.how}){note}")]
    if located.manifest is not None:
        m = located.manifest
        checks.append(Check("worker env", True, f"key {m.key}, built with {m.installer} in {m.build_seconds:.1f} s "
                                                f"from {m.base_python}"))
    return located.python, checks


def pin_check(python: str) -> Check:
    """The worker's installed versions against the pins this client carries."""
    verdict = provision.check(python, full=False)
    return Check("pins", verdict.ok, verdict.text(), "rebuild the worker environment: `scm setup --force`")


_PACKAGE_PROBE = """\
import importlib.metadata as metadata, importlib.util, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
found["scm_worker"] = "importable" if importlib.util.find_spec("scm_worker") else None
print(json.dumps(found))
"""


def worker_packages(python: str) -> list[Check]:
    """The worker interpreter's versions of the DoWhy stack, read from package metadata."""
    done = run_quietly([python, "-c", _PACKAGE_PROBE, *WORKER_PACKAGES])
    if done is None or done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1] if done else "could not run"
        return [Check("worker packages", False, f"{python} could not report its packages: {reason}", fix_hint())]
    found = json.loads(done.stdout)
    requirements = "`scm setup`"
    checks = [Check(name, found.get(name) is not None, found.get(name) or "not installed",
                    f"install the worker's packages: {requirements}") for name in WORKER_PACKAGES]
    checks.append(Check("scm_worker", found.get("scm_worker") is not None,
                        found.get("scm_worker") or "not importable",
                        "build a worker environment: `scm setup`"))
    return checks


def live_handshake(args: argparse.Namespace) -> list[Check]:
    """Start a Worker, show its initialize answer, time a ping, close it."""
    worker = Worker(args.python, start_timeout=args.timeout or 120.0, request_timeout=args.timeout or 30.0)
    try:
        info = worker.start()
        started = time.perf_counter()
        worker.ping()
        ping_ms = (time.perf_counter() - started) * 1000
    except WorkerError as exc:
        lines = str(exc).splitlines()
        detail = lines[0] + "".join(f"\n{' ' * 30}{line}" for line in lines[1:][-8:])
        return [Check("handshake", False, detail, fix_hint())]
    finally:
        worker.close()
    return [
        Check("handshake", True, f"worker {info.get('worker_version')}, protocol {info.get('protocol_version')}, "
                                 f"Python {info.get('python_version')}, DoWhy {info.get('dowhy_version')}, "
                                 f"pid {info.get('pid')}, warm {'yes' if info.get('warm') else 'no (loading DoWhy)'}"),
        Check("ping", True, f"{ping_ms:.1f} ms round trip"),
    ]


# -- argument parsing ------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def seed_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2**32 - 1], got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """On the main parser with defaults; on each command with SUPPRESS, so both positions work."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--python", metavar="PATH", default=default,
                        help=f"the worker's Python 3.11 interpreter (default: ${ENV_VAR}, then {VENV}/bin/python, "
                             "then the environment `scm setup` built)")
    parser.add_argument("-y", "--yes", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="build a missing worker environment without asking (as `scm setup`)")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=default,
                        help="give up on a worker call after this long (default: wait)")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="log to stderr at DEBUG, including the worker's own log lines")


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", nargs="?", type=Path, metavar="REQUEST.json",
                        help="a request file {graph, traces, config}, as in tests/fixtures/")
    parser.add_argument("--graph", type=Path, metavar="G.json",
                        help="instead of REQUEST.json: {nodes, edges} or a list of [parent, child] edges")
    parser.add_argument("--traces", type=Path, metavar="T.csv",
                        help="with --graph: a CSV with a header row of node names (or JSON columns/rows)")
    parser.add_argument("--config", type=Path, metavar="C.json", help="with --graph: fit settings")
    parser.add_argument("--seed", type=seed_value, metavar="N", help="random seed (overrides config.seed)")
    parser.add_argument("--quality", type=str.upper, choices=QUALITIES,
                        help="mechanism search effort (overrides config.quality)")
    parser.add_argument("--no-validate", action="store_true",
                        help="return the model even if it scores below the R² threshold")
    parser.add_argument("--json", action="store_true", help="print the raw result JSON instead of a summary")


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("observational", "interventional", "counterfactual"),
                        help="default: interventional if --do/--shift/--scale is given, else observational")
    parser.add_argument("--do", dest="interventions", action="append", type=hard_intervention, metavar="X=5",
                        help="set node X to a value (number, true/false or category); repeatable")
    parser.add_argument("--shift", dest="interventions", action="append", type=soft_intervention("shift"),
                        metavar="Y=1.0", help="add a number to node Y's values; repeatable")
    parser.add_argument("--scale", dest="interventions", action="append", type=soft_intervention("scale"),
                        metavar="Y=2.0", help="multiply node Y's values by a number; repeatable")
    parser.add_argument("--num-samples", type=positive_int, default=1000, metavar="N",
                        help="draws for observational/interventional samples (default 1000)")
    parser.add_argument("--query-nodes", metavar="A,B", help="report only these nodes")
    parser.add_argument("--observed", type=Path, metavar="ROWS.json|ROWS.csv",
                        help="the factual rows for --kind counterfactual")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="scm", description="Fit and query structural causal models with "
                                     "the scm-worker (DoWhy) process.", epilog=EPILOG, formatter_class=formatter)
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, epilog=EPILOG, formatter_class=formatter)
        add_global_options(sub, suppress=True)
        sub.set_defaults(handler=handler)
        return sub

    command("doctor", cmd_doctor, "check the interpreters, the worker's packages and a live handshake")
    add_input_options(command("fit", cmd_fit, "fit an SCM and print its mechanisms and held-out scores"))
    sample = command("sample", cmd_sample, "fit an SCM, then print statistics of samples drawn from it")
    add_input_options(sample)
    add_sample_options(sample)
    demo_parser = command("demo", cmd_demo, "fit every request in DIR with one worker and summarise")
    demo_parser.add_argument("directory", nargs="?", default="tests/fixtures", metavar="DIR",
                             help="directory of *.json requests (default: tests/fixtures)")
    for extension in (cli_batch, cli_models, cli_questions):
        extension.add_parser(command)
    cli_report.add_parser(commands)
    cli_setup.add_parser(commands)
    return parser


# -- main ------------------------------------------------------------------------------


class _WorkerLines(logging.Filter):
    """Without -v, the worker's own log lines (relayed from its stderr) stay out of the way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("scm-worker[")


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("scm: %(levelname)s: %(message)s"))
        handler.addFilter(_WorkerLines())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler], force=True)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, ValidationFailed):
        return EXIT_VALIDATION
    if isinstance(exc, InsufficientData):
        return EXIT_INSUFFICIENT
    if isinstance(exc, (InputError, InvalidParams, LimitExceeded)):
        return EXIT_USAGE
    return EXIT_ERROR


def fail(message: str, code: int) -> int:
    print(f"scm: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # ✓/✗/R² on a terminal that cannot show them
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        cli_setup.offer_setup(args)
        return int(args.handler(args))
    except InputError as exc:
        return fail(f"error: {exc}", EXIT_USAGE)
    except WorkerError as exc:
        return fail(_format.error_text(exc), exit_code(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
