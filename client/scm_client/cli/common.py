"""What every `scm` command shares: input files, --do parsing, options, exit codes, a worker.

Standard library only. The command modules (fit, questions, report, batch, models,
doctor, demo) import this one and nothing above it; ``scm_client.cli`` assembles them.
Errors are one paragraph on stderr with an exit code per error class (see ``EPILOG``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._daemon import SWITCH_ENV, DaemonOptions, daemon_enabled
from .._locate import ENV_VAR, VENV
from ..errors import InsufficientData, InvalidParams, LimitExceeded, ValidationFailed
from ..results import FitResult
from ..worker import ProgressCallback, State, Timeout, Worker
from .progress import CallProgress, call_progress

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
else the environment `scm setup` built. Run `scm doctor` when the worker does not start.
Commands use the user's daemon (`scm daemon status`), starting one when none runs, unless
--no-daemon or SCM_DAEMON=off."""

QUALITIES = ("GOOD", "BETTER", "BEST", "FAST")

Handler = Callable[[argparse.Namespace], int]


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

    def as_dict(self) -> dict[str, Any]:
        """``{"graph", "traces", "config"}``, as WorkerPool.fit_many takes a request."""
        return {"graph": self.graph, "traces": self.traces, "config": self.config}


def read_json(path: Path) -> Any:
    """Parse a JSON file by the one rule (``parse_json``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_json(text, str(path))


def parse_json(text: str, where: str) -> Any:
    """The one JSON rule of every command's input: NaN means missing (null), Infinity is
    refused, and an error names ``where`` (a file, or a file's line) with the position."""
    try:
        return json.loads(text, parse_constant=lambda name: _json_constant(name, where))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from None


def _json_constant(name: str, where: str) -> None:
    """NaN → None (missing); Infinity and -Infinity are refused."""
    if name != "NaN":
        raise InputError(f"{where}: {name} is not a value the worker accepts "
                         f"(use a finite number or null)")


def load_request(path: Path) -> Request:
    """REQUEST.json: {graph, traces, config?, name?}, as in tests/fixtures/."""
    return request_of(read_json(path), str(path), path.stem)


def request_of(data: Any, where: str, default_name: str) -> Request:
    """The one reading of a request, from a file or a JSONL line: {graph, traces, config?,
    name?}; a graph as an edge list and traces as rows are made the wire's shapes."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: a request must be a JSON object with graph, traces and "
                         f"config members")
    for member in ("graph", "traces"):
        if member not in data:
            raise InputError(f"{where}: the request has no {member!r} member "
                             f"(expected graph, traces, config)")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise InputError(f"{where}: config must be an object of fit settings, "
                         f"got {type(config).__name__}")
    traces = data["traces"]
    if not isinstance(traces, dict):
        traces = columns_of(traces, f"{where}: traces")
    name = str(data.get("name") or default_name)
    return Request(name, graph_of(data["graph"], where), traces, config)


def read_requests(source: Path) -> list[Request]:
    """Every request of a folder of *.json files (by file name) or of a JSONL file (one a
    line; blank lines skipped), each read as ``load_request`` reads one file."""
    if source.is_dir():
        return [load_request(path) for path in sorted(source.glob("*.json"))]
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    return [request_of(parse_json(line, f"{source}:{i}"), f"{source}:{i}", f"line {i}")
            for i, line in lines]


def load_parts(graph_path: Path, traces_path: Path, config_path: Path | None) -> Request:
    """--graph G.json --traces T.csv|T.json [--config C.json]."""
    config = read_json(config_path) if config_path else {}
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: the config must be a JSON object of fit settings")
    graph = graph_of(read_json(graph_path), str(graph_path))
    return Request(traces_path.stem, graph, read_table(traces_path, "traces"), config)


def graph_of(value: Any, where: str) -> Any:
    """{nodes, edges} as given (the worker checks it); an edge list gets its nodes in order
    of appearance."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        pairs = [edge for edge in value if isinstance(edge, list) and len(edge) == 2]
        nodes = list(dict.fromkeys(node for edge in pairs for node in edge))
        return {"nodes": nodes, "edges": value}
    raise InputError(f"{where}: the graph must be "
                     f"{{\"nodes\": [...], \"edges\": [[parent, child], ...]}} "
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
    raise InputError(f"{where}: expected an object of columns {{node: [values]}} "
                     f"or an array of row objects")


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
            raise InputError(f"{path}, line {reader.line_num}: {len(row)} cells, "
                             f"but the header has {len(header)}")
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


def mechanism_option(text: str) -> tuple[str, str | dict[str, Any]]:
    """--mechanism NODE=SPEC: a name (``Y=linear``, ``X=normal``), or a polynomial's name
    and degree (``W=polynomial:3``); the worker checks the name against the node."""
    node, raw = _split_assignment(text)
    name, colon, degree = raw.partition(":")
    if not colon:
        return node, name
    if not degree.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:DEGREE with an integer degree")
    return node, {"model": name, "degree": int(degree)}


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


def open_worker(args: argparse.Namespace, warm_up: bool = True,
                store: str | None = None) -> Worker:
    """The command's worker, drawing its progress line on stderr (progress.py) during calls.

    The user's daemon (started when none serves, with ``--python``'s interpreter) unless
    ``--no-daemon`` or ``SCM_DAEMON=off``, or ``store`` points at another model store
    directory: the daemon serves its own store, so that command gets a private worker.
    A private worker of a one-shot command skips the warm-up fit: its own first fit pays
    the same start-up (a daemon warms up: it outlives the command).
    """
    progress = call_progress(args)
    if uses_daemon(args) and store is None:
        return CommandWorker(args.python, progress, request_timeout=args.timeout,
                             daemon=DaemonOptions(python=args.python))
    worker_args = (() if warm_up else ("--no-warmup",)) + (("--store", store) if store else ())
    return CommandWorker(args.python, progress, request_timeout=args.timeout,
                         worker_args=worker_args)


def uses_daemon(args: argparse.Namespace) -> bool:
    """Whether commands connect to the daemon: not with --no-daemon or SCM_DAEMON=off."""
    return not getattr(args, "no_daemon", False) and daemon_enabled()


class CommandWorker(Worker):
    """A Worker whose every call shows its own progress, erased before the command prints."""

    def __init__(self, python: str | None, progress: CallProgress, **options: Any) -> None:
        super().__init__(python, **options)
        self.progress = progress

    def start(self) -> dict[str, Any]:
        if self.state is State.RUNNING:
            return super().start()
        with self.progress.during(self.backend.starting):
            return super().start()

    def _call(self, method: str, params: Any, timeout: Timeout,
              on_progress: ProgressCallback | None, timeout_s: float | None = None) -> Any:
        waiting = self.backend.starting if self.state is not State.RUNNING else ""
        with self.progress.during(waiting):
            return super()._call(method, params, timeout, on_progress or self.progress.update,
                                 timeout_s)


def fit_config(request: Request, args: argparse.Namespace) -> dict[str, Any]:
    """The request's config with --seed / --quality / --no-validate / --mechanism applied."""
    config = dict(request.config)
    if args.seed is not None:
        config["seed"] = args.seed
    if args.quality is not None:
        config["quality"] = args.quality
    if args.no_validate:
        config["validate_r2"] = False
    if args.mechanisms:
        config["mechanisms"] = {**(config.get("mechanisms") or {}), **dict(args.mechanisms)}
    return config


def fit_request(worker: Worker, request: Request, config: dict[str, Any]) -> FitResult:
    """Fit the request as ``Worker.fit`` sends any (values it cannot shape go as given,
    so the worker's checks name the offending field)."""
    return worker.fit(request.graph, request.traces, **config)


def request_from_args(args: argparse.Namespace) -> Request:
    if args.request is not None:
        if args.graph or args.traces or args.config:
            raise InputError("give either REQUEST.json or --graph/--traces/--config, not both")
        return load_request(args.request)
    if args.graph is None or args.traces is None:
        raise InputError("give REQUEST.json, or both --graph G.json and --traces T.csv")
    return load_parts(args.graph, args.traces, args.config)


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


def add_global_options(parser: argparse.ArgumentParser, suppress: bool,
                       own_python: bool = False) -> None:
    """On the main parser with defaults; on each command with SUPPRESS, so both positions
    work (`scm -v fit …` and `scm fit … -v`). ``own_python``: the command declares its own
    --python (`scm setup`: the 3.11 to build from)."""
    default = argparse.SUPPRESS if suppress else None
    if not own_python:
        parser.add_argument("--python", metavar="PATH", default=default,
                            help=f"the worker's Python 3.11 interpreter (default: ${ENV_VAR}, "
                                 f"then {VENV}/bin/python, then the environment `scm setup` "
                                 "built)")
    parser.add_argument("-y", "--yes", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="build a missing worker environment without asking (as `scm setup`)")
    parser.add_argument("--no-daemon", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help=f"a private worker for this command instead of the user's daemon "
                             f"(also {SWITCH_ENV}=off)")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=default,
                        help="give up on a worker call after this long (default: wait)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="log to stderr at DEBUG, including the worker's own log lines; "
                             "without a terminal, progress as plain lines (at most one a second)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="no progress line on stderr (a terminal shows one by default)")


def add_global_options_to_actions(actions: Any) -> None:
    """The global flags after a command's action too (`scm models list -v`)."""
    for action in actions.choices.values():
        add_global_options(action, suppress=True)


def add_intervention_options(parser: argparse.ArgumentParser, do: str, shift: str,
                             scale: str) -> None:
    """--do X=5, --shift Y=1.0, --scale Y=2.0, all into ``args.interventions``, in order."""
    parser.add_argument("--do", dest="interventions", action="append", type=hard_intervention,
                        metavar="X=5", help=do)
    parser.add_argument("--shift", dest="interventions", action="append",
                        type=soft_intervention("shift"), metavar="Y=1.0", help=shift)
    parser.add_argument("--scale", dest="interventions", action="append",
                        type=soft_intervention("scale"), metavar="Y=2.0", help=scale)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", nargs="?", type=Path, metavar="REQUEST.json",
                        help="a request file {graph, traces, config}, as in tests/fixtures/")
    parser.add_argument("--graph", type=Path, metavar="G.json",
                        help="instead of REQUEST.json: {nodes, edges} "
                             "or a list of [parent, child] edges")
    parser.add_argument("--traces", type=Path, metavar="T.csv",
                        help="with --graph: a CSV with a header row of node names "
                             "(or JSON columns/rows)")
    parser.add_argument("--config", type=Path, metavar="C.json", help="with --graph: fit settings")
    parser.add_argument("--seed", type=seed_value, metavar="N",
                        help="random seed (overrides config.seed)")
    parser.add_argument("--quality", type=str.upper, choices=QUALITIES,
                        help="mechanism search effort (overrides config.quality)")
    parser.add_argument("--mechanism", dest="mechanisms", action="append", type=mechanism_option,
                        metavar="NODE=SPEC",
                        help="set a node's mechanism (Y=linear, X=normal, W=polynomial:3; "
                             "docs/PROTOCOL.md lists the names); repeatable, "
                             "over config.mechanisms")
    parser.add_argument("--no-validate", action="store_true",
                        help="return the model even if it scores below the R² threshold")
    parser.add_argument("--json", action="store_true",
                        help="print the raw result JSON instead of a summary")




def add_command(subparsers: Any, name: str, handler: Handler, help_: str,
                description: str | None = None) -> argparse.ArgumentParser:
    """One `scm NAME` subcommand with the global options, the exit-code epilog and its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_, description=description or help_, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)
    return parser


# -- exit codes ------------------------------------------------------------------------


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
