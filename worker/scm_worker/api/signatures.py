"""The kinds of RPC params: name, default, and the check that types and bounds each.

Each method declares its params from these kinds where it is registered (methods.py,
``registry``); the declarations shared with other code (``fit``'s with the Dask gateway,
``sample``'s with ``report``, ``shutdown``'s with the scheduler) are named here. The
boundary (``binding.rpc_method``) checks a request against its method's declaration
before any work and before waiting for the warm-up, so a bad request is refused at
once and ``methods``/``services`` receive checked values only. What only the fitted
model can decide (is ``target`` one of its nodes, do the rows match its columns, is an
intervention's value one of its categories) is checked by ``services`` against the model.
docs/PROTOCOL.md lists the same params; tests/worker/test_signatures.py holds the two
together. Pure Python: no pandas, no DoWhy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import checks
from ..columns import json_type
from ..engine import dask_address
from ..errors import invalid_params, prefixed_fields
from ..limits import Limits

Check = Callable[[Any, str, Limits], Any]
REQUIRED: Final = object()

#: bounds on numeric knobs that are not sample counts: past these, floats overflow
MAX_KNOB: Final = 1e12
MAX_WAIT_S: Final = 86_400
MAX_SLEEP_S: Final = 3600
MAX_PERMUTATIONS: Final = 1000
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
SAMPLE_KINDS: Final = ("observational", "interventional", "counterfactual")
#: how ``distribution_change`` measures the change (questions.CHANGE_MEASURES implements them)
CHANGE_MEASURES: Final = ("kl", "mean", "std")
REPORT_FORMATS: Final = ("html", "svg")
PRINT_TARGETS: Final = ("sys.stdout", "fd1", "stderr")


@dataclass(frozen=True)
class Param:
    name: str
    check: Check
    default: Any = REQUIRED
    #: a sample-count knob's maximum (documented beside its default)
    limit: int | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Signature:
    """One method's params in wire order (positional params bind in this order)."""

    params: tuple[Param, ...]
    #: checks across params, after each param's own (fit: traces against the graph)
    combine: Callable[[dict[str, Any], Limits], dict[str, Any]] | None = None
    #: other named params pass through unchecked (a ``**params`` stand-in in tests)
    open: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def bind(self, params: Any, limits: Limits) -> dict[str, Any]:
        """Checked values by name, defaults filled in; -32602 naming the first bad param."""
        given = self._by_name(params)
        checked: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                checked[param.name] = param.check(given[param.name], param.name, limits)
            elif param.required:
                raise invalid_params(param.name, "required parameter is missing")
            else:
                checked[param.name] = param.default
        if self.open:
            checked.update((k, v) for k, v in given.items() if k not in checked)
        return self.combine(checked, limits) if self.combine is not None else checked

    def _by_name(self, params: Any) -> Mapping[str, Any]:
        if isinstance(params, list):
            if len(params) > len(self.params):
                raise invalid_params(
                    "params",
                    f"too many positional params: {len(params)} given, {len(self.params)} taken",
                )
            return dict(zip(self.names, params, strict=False))
        for name in params:
            if name not in self.names and not self.open:
                raise invalid_params(name, "unknown parameter")
        return params  # type: ignore[no-any-return]


# -- param kinds ---------------------------------------------------------------------


def _unchecked(value: Any, field: str, limits: Limits) -> Any:
    return value


def anything(name: str, default: Any = REQUIRED) -> Param:
    """A param checked later: against the fitted model, or as a whole with another."""
    return Param(name, _unchecked, default)


def boolean(name: str, default: Any = REQUIRED) -> Param:
    return Param(name, lambda value, field, _limits: checks.require_bool(value, field), default)


def choice(name: str, options: tuple[str, ...], default: Any = REQUIRED) -> Param:
    return Param(name, lambda value, field, _limits: checks.choice(value, field, options), default)


def seed(name: str = "seed") -> Param:
    return Param(name, lambda value, field, _limits: checks.optional_seed(value, field), None)


def model_id() -> Param:
    return Param("model_id", lambda value, _field, _limits: checks.check_model_id(value))


def optional_number(name: str, low: float, high: float) -> Param:
    """``null`` (the default), or a finite number in [low, high]."""
    def check(value: Any, field: str, _limits: Limits) -> float | None:
        return None if value is None else checks.bounded_number(value, field, low, high)

    return Param(name, check, None)


def count(name: str, default: int, minimum: int, maximum: int | Callable[[Limits], int]) -> Param:
    """An integer of at least ``minimum``; past ``maximum`` (a number or a worker limit) -32004."""
    def check(value: Any, field: str, limits: Limits) -> int:
        top = maximum(limits) if callable(maximum) else maximum
        return checks.count_param(value, field, minimum, top)

    return Param(name, check, default, maximum if isinstance(maximum, int) else None)


def knob(name: str, default: int, maximum: int) -> Param:
    """A sample count of a causal question: ``null`` or absent is the default."""
    def check(value: Any, field: str, _limits: Limits) -> int:
        return default if value is None else checks.count_param(value, field, 1, maximum)

    return Param(name, check, default, maximum)


def _array(value: Any, field: str, _limits: Limits) -> list[Any]:
    return checks.require_list(value, field)


def optional_fraction(name: str) -> Param:
    """``null`` (the default), or a number in (0, 1)."""
    return Param(name, lambda value, field, _limits: checks.optional_fraction(value, field), None)


def fraction(name: str, default: float) -> Param:
    """A number in (0, 1); ``null`` or absent is the default."""
    def check(value: Any, field: str, _limits: Limits) -> float:
        checked = checks.optional_fraction(value, field)
        return default if checked is None else checked

    return Param(name, check, default)


def optional_count(name: str, minimum: int, maximum: int) -> Param:
    """``null`` (the default: the method's own rule), or an integer in [minimum, maximum]
    (past ``maximum`` -32004)."""
    def check(value: Any, field: str, _limits: Limits) -> int | None:
        return None if value is None else checks.count_param(value, field, minimum, maximum)

    return Param(name, check, None, maximum)


def optional_list(name: str) -> Param:
    """``null`` (the default), or an array checked later."""
    def check(value: Any, field: str, _limits: Limits) -> list[Any] | None:
        return None if value is None else checks.require_list(value, field)

    return Param(name, check, None)


def number(name: str, low: float, high: float) -> Param:
    """A required finite number in [low, high]."""
    return Param(name, lambda value, field, _limits: checks.bounded_number(value, field, low, high))


def _scheduler(value: Any, field: str, _limits: Limits) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_params(field, "must be a Dask scheduler address, e.g. 'tcp://host:8786'")
    return value.strip()


def _tls_file(value: Any, field: str, _limits: Limits) -> str | None:
    return dask_address.tls_file(value, field)


def _connect_timeout(value: Any, field: str, _limits: Limits) -> float:
    if value is None:
        return DEFAULT_CONNECT_TIMEOUT
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise invalid_params(field, f"must be null or a number of seconds > 0, got {value!r}")
    return float(value)


def integer(name: str, default: Any = REQUIRED) -> Param:
    def check(value: Any, field: str, _limits: Limits) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_params(field, f"must be an integer, got {json_type(value)}")
        return value

    return Param(name, check, default)


def string(name: str, default: Any = REQUIRED) -> Param:
    def check(value: Any, field: str, _limits: Limits) -> str:
        if not isinstance(value, str):
            raise invalid_params(field, "must be a string")
        return value

    return Param(name, check, default)


def print_target(name: str, default: Any = REQUIRED) -> Param:
    """Where ``debug.print`` writes: one of PRINT_TARGETS."""
    def check(value: Any, field: str, _limits: Limits) -> str:
        if value not in PRINT_TARGETS:
            raise invalid_params(field, "must be 'sys.stdout', 'fd1' or 'stderr'")
        return str(value)

    return Param(name, check, default)


def _timeout_s(value: Any, field: str, _limits: Limits) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value <= MAX_WAIT_S):
        raise invalid_params(
            field, f"must be null or a number of seconds in (0, {MAX_WAIT_S}], got {value!r}")
    return float(value)


#: a param every queued request may carry beside its method's own: its deadline, counted
#: from its arrival. The scheduler takes it out of the params before they are bound (the
#: queue, not the handler, owns it); inside a batch it is an unknown param of its entry.
TIMEOUT_S: Final = Param("timeout_s", _timeout_s, None)


def take_timeout_s(message: dict[str, Any], limits: Limits) -> float | None:
    """Remove ``params.timeout_s`` from a single request and check it (-32602 naming it)."""
    params = message.get("params")
    if not isinstance(params, dict) or TIMEOUT_S.name not in params:
        return None
    return TIMEOUT_S.check(params.pop(TIMEOUT_S.name), TIMEOUT_S.name, limits)  # type: ignore[no-any-return]


# -- checks across params --------------------------------------------------------------


def _fit_request(given: dict[str, Any], limits: Limits) -> dict[str, Any]:
    graph, columns, config = checks.parse_fit_request(
        given["graph"], given["traces"], given["config"], limits
    )
    return {"graph": graph, "traces": columns, "config": config}


def _graph_and_traces(given: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """``falsify``'s graph and traces, checked as ``fit``'s are."""
    graph = checks.parse_graph(given["graph"], limits)
    return {**given, "graph": graph,
            "traces": checks.parse_traces(given["traces"], graph.nodes, limits)}


def prune_bounds(given: dict[str, Any], _limits: Limits) -> dict[str, Any]:
    if given["older_than_s"] is None and given["max_total_mb"] is None:
        raise invalid_params("older_than_s", "give older_than_s, max_total_mb or both")
    return given


# -- the declarations shared beyond their method ---------------------------------------

#: ``sample``'s params after ``model_id``; also ``report``'s ``samples``
SAMPLE_QUERY: Final = (
    choice("kind", SAMPLE_KINDS, "observational"),
    anything("interventions", None),
    anything("observed", None),
    count("num_samples", 1000, 1, lambda limits: limits.max_num_samples),
    optional_list("query_nodes"),
    seed(),
    boolean("return_samples", True),
)
#: what ``report``'s ``samples`` may hold (its samples are always returned to draw them)
REPORT_SAMPLE_KEYS: Final = (
    "kind",
    "interventions",
    "observed",
    "num_samples",
    "query_nodes",
    "seed",
)


def sample_query(name: str) -> Param:
    """``null`` (the default), or ``report``'s ``samples``: a ``sample`` request without
    ``model_id``, checked as one; ``kind`` defaults to interventional when interventions
    are given."""
    return Param(name, _sample_query, None)


def _sample_query(value: Any, field: str, limits: Limits) -> dict[str, Any] | None:
    if value is None:
        return None
    spec = checks.require_dict(value, field)
    for key in spec:
        if key not in REPORT_SAMPLE_KEYS:
            raise invalid_params(
                f"{field}.{key}", f"unknown parameter (expected one of {list(REPORT_SAMPLE_KEYS)})"
            )
    kind = spec.get("kind", "interventional" if spec.get("interventions") else "observational")
    with prefixed_fields(field):
        return Signature(SAMPLE_QUERY).bind({**spec, "kind": kind}, limits)


#: the causal questions' bootstrap (engine/bootstrap.py), after their own params and ``seed``:
#: ``confidence`` null is the point answer; ``refit`` false asks again without refitting
MAX_BOOTSTRAP: Final = 200
UNCERTAINTY: Final = (
    optional_fraction("confidence"),
    knob("num_bootstrap", 20, MAX_BOOTSTRAP),
    boolean("refit", True),
)

FIT: Final = Signature(
    (anything("graph"), anything("traces"), anything("config", None)), _fit_request
)

#: ``evaluate``'s params: the first six in their original (positional) order, then the
#: parts of DoWhy's ``evaluate_causal_model`` added later (engine/evaluation.py)
EVALUATE: Final = Signature((
    model_id(),
    anything("traces"),
    boolean("invertibility", False),
    boolean("falsify_graph", False),
    count("max_permutations", 50, 1, MAX_PERMUTATIONS),
    seed(),
    boolean("mechanisms", True),
    boolean("compare_mechanism_baselines", False),
    boolean("overall_kl_divergence", True),
    fraction("falsify_graph_significance_level", 0.2),
))

#: ``falsify``'s params: a graph and its rows, no model (DoWhy's ``falsify_graph``);
#: ``max_permutations`` null is DoWhy's rule, 1 / ``significance_level``
FALSIFY: Final = Signature((
    anything("graph"),
    anything("traces"),
    optional_count("max_permutations", 1, MAX_PERMUTATIONS),
    fraction("significance_level", 0.05),
    seed(),
), _graph_and_traces)

#: ``batch.fit``'s params: the scheduler's address and how to reach it (dask_address.py)
BATCH_FIT: Final = Signature(
    (
        Param("requests", _array),
        Param("scheduler", _scheduler),
        boolean("persist", False),
        Param("connect_timeout", _connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        boolean("insecure", False),
        *(Param(name, _tls_file, None) for name in dask_address.TLS_FIELDS),
    ),
    lambda checked, _limits: dask_address.check(checked),
)

#: also read by the scheduler, which weighs ``force`` when a shutdown arrives
SHUTDOWN: Final = Signature((boolean("force", False),))

NO_PARAMS: Final = Signature(())
