"""Model work behind the RPC methods: fit, evaluate, falsify, sample. Imports DoWhy.

Handlers in methods.py import this module only after warm-up, so the worker answers
its handshake before DoWhy has finished loading.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from .. import __version__, checks
from ..cancellation import NEVER, CancelToken
from ..columns import Column, ResultEncoding, update_digest
from ..context import WorkerContext
from ..errors import INSUFFICIENT_DATA, VALIDATION_FAILED, WorkerError, invalid_params
from ..jsonio import json_object
from ..versions import dowhy_version
from . import bootstrap, evaluation, needs, questions, sampling, scoring
from .contention import free_cores_only
from .fitting import FittedModel, Reuse, effective_seed, fit_model
from .frames import Frame, to_frame
from .interventions import parse_interventions


def fit(
    ctx: WorkerContext, parsed_graph: checks.Graph, columns: checks.Traces,
    fit_config: checks.FitConfig,
) -> dict[str, Any]:
    """Fit checked params (checked against fit's declaration before waiting for the warm-up)."""
    key, cached = fit_cache(ctx, parsed_graph, columns, fit_config)
    if cached is not None:
        return cached
    reuse = ctx.store.reusable if fit_config.cache else None  # a "fresh fit" reuses nothing
    model = fit_columns(
        parsed_graph, columns, fit_config, ctx.n_jobs, progress_reporter(ctx), ctx.cancel, reuse
    )
    ctx.progress("storing", 0, 1)
    model_id = ctx.store.add(model, persist=fit_config.persist, cache_key=key)
    return fit_outcome(model_id, model, fit_config, cache_hit=False, ignored=columns.ignored)


def fit_cache(
    ctx: WorkerContext, parsed_graph: checks.Graph, columns: checks.Traces,
    fit_config: checks.FitConfig,
) -> tuple[str, dict[str, Any] | None]:
    """The request's cache key, and the outcome of an identical earlier fit if one is kept.

    The key holds the node columns only: columns the request carries beyond the graph
    (``columns.ignored``) change nothing fitted, so they hit the same entry."""
    if fit_config.persist and ctx.store.files is None:
        raise invalid_params("config.persist", "this worker runs without a store (--no-store)")
    key = cache_key(parsed_graph, columns, fit_config)
    cached_id = ctx.store.cached(key) if fit_config.cache else None
    if cached_id is None:
        return key, None
    model = ctx.store.get(cached_id)
    if fit_config.persist:
        ctx.store.save(cached_id)
    return key, fit_outcome(cached_id, model, fit_config, cache_hit=True, ignored=columns.ignored)


def fit_columns(
    parsed_graph: checks.Graph, columns: dict[str, Column], fit_config: checks.FitConfig,
    n_jobs: int, progress: Any = None, cancel: CancelToken = NEVER, reuse: Reuse | None = None,
) -> FittedModel:
    """The fit itself, wherever it runs: this worker's ``fit``, or a Dask task (cluster.py),
    which reuses no node (``reuse`` None: the Dask worker has no store of its own).

    Consumes ``columns``: once the frame holds the data they are emptied, so no second
    copy of the traces lasts through the fit.
    """
    frame = complete_rows(to_frame(columns), fit_config.missing, "traces")
    columns.clear()
    return fit_model(parsed_graph, frame, fit_config, n_jobs, progress, cancel, reuse)


def progress_reporter(ctx: WorkerContext) -> Any:
    """Progress goes out only for requests with an id: a notification has no one to tell."""
    return ctx.progress if ctx.current_request_id is not None else None


def cache_key(
    graph: checks.Graph, columns: dict[str, Column], config: checks.FitConfig
) -> str:
    """Content hash of the canonical request: same graph, traces and config → same key.

    The traces are hashed as their columns' canonical bytes, streamed (columns.py), not
    re-serialised as JSON: a JSON list and a binary column of the same values share a key.
    """
    digest = hashlib.sha256()
    header = {
        "graph": graph.as_json(),
        "config": config.fit_relevant(),
        "versions": [__version__, dowhy_version()],
    }
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name, column in columns.items():
        update_digest(digest, name, column)
    return digest.hexdigest()


def fit_outcome(
    model_id: str, model: FittedModel, fit_config: checks.FitConfig, cache_hit: bool,
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """The fit's result; ``ignored`` (trace columns that are not nodes) is this request's
    ``extra_columns`` warning, not the model's: a cache hit has its own."""
    result = note_extra_columns(json_object({"model_id": model_id, **model.summary}), ignored)
    result["metadata"]["cache_hit"] = cache_hit
    validation = result["validation"]
    if fit_config.validate_r2 and not validation["passed"]:
        raise WorkerError(
            VALIDATION_FAILED,
            _upper_first(scoring.verdict_text(validation)),
            {
                "r2_scores": validation["r2_scores"],
                "mean_r2": validation["mean_r2"],
                "threshold": validation["threshold"],
                "rule": validation["rule"],
                "failed_nodes": validation["failed_nodes"],
                "model_id": model_id,
            },
        )
    return result


def note_extra_columns(result: dict[str, Any], ignored: Sequence[str]) -> dict[str, Any]:
    """A fit result with the ``extra_columns`` warning when its request had columns beyond
    the graph's nodes (``config.extra_columns: "ignore"``): they were not fitted on."""
    if ignored:
        result["status"] = "warning"
        result["warnings"].append({
            "code": "extra_columns",
            "node": None,
            "columns": list(ignored),
            "message": f"{len(ignored)} trace column(s) that are not graph nodes were "
            f"ignored: {list(ignored)}",
        })
    return result


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def complete_rows(frame: Frame, missing: str, field: str) -> Frame:
    if frame.dropped_rows and missing == "error":
        raise invalid_params(
            field,
            f"{frame.dropped_rows} rows have missing values (null) and config.missing is 'error'",
        )
    return frame


def evaluate(ctx: WorkerContext, model_id: str, traces: Any, invertibility: bool,
             falsify_graph: bool, max_permutations: int, seed: int | None, mechanisms: bool,
             compare_mechanism_baselines: bool, overall_kl_divergence: bool,
             falsify_graph_significance_level: float) -> dict[str, Any]:
    """The stored model's scores on the rows, and the parts of DoWhy's
    ``evaluate_causal_model`` asked for (evaluation.py)."""
    model = ctx.store.get(model_id)
    asked = evaluation.Parts(
        mechanisms, compare_mechanism_baselines, invertibility, overall_kl_divergence,
        falsify_graph, max_permutations, falsify_graph_significance_level,
    )
    columns = checks.parse_traces(traces, model.graph.nodes, ctx.limits)
    _require_kinds(model, columns, "traces")
    frame = complete_rows(to_frame(columns), model.config.missing, "traces")
    data = _enough_rows(frame.data, asked.min_rows(), "evaluation")
    _require_known_categories(model, data, "traces")
    nodes, accuracy, f1 = evaluation.node_scores(model, data)
    r2_scores = {node: scores["r2"] for node, scores in nodes.items()}
    verdict = scoring.judge(r2_scores, model.config.r2_threshold, model.config.r2_rule)
    used = effective_seed(seed)
    extra = _evaluated(ctx, model, data, asked, used) if asked.any() else {}
    return json_object({
        **extra,
        "model_id": model_id,
        "nodes": nodes,
        "r2_scores": r2_scores,
        "accuracy": accuracy,
        "f1_scores": f1,
        "mean_r2": verdict.mean_r2,
        "passed": verdict.passed,
        "threshold": model.config.r2_threshold,
        "rule": model.config.r2_rule,
        "failed_nodes": verdict.failed_nodes,
        "metadata": {"num_samples": len(data), "dropped_rows": frame.dropped_rows, "seed": used,
                     **ignored_columns({"traces": columns.ignored})},
    })


def _evaluated(ctx: WorkerContext, model: FittedModel, data: pd.DataFrame,
               parts: evaluation.Parts, seed: int) -> dict[str, Any]:
    if ctx.current_request_id is not None:
        ctx.progress("diagnostics", 0, 1)
    with free_cores_only():
        return evaluation.evaluate_model(model, data, parts, seed, ctx.n_jobs)


def falsify(ctx: WorkerContext, graph: checks.Graph, traces: checks.Traces,
            max_permutations: int | None, significance_level: float,
            seed: int | None) -> dict[str, Any]:
    """DoWhy's ``falsify_graph`` on checked graph and columns: no model is fitted."""
    started = time.perf_counter()
    frame = to_frame(traces)
    data = _enough_rows(frame.data, 2, "falsification")
    used = seeded(seed)
    if ctx.current_request_id is not None:
        ctx.progress("diagnostics", 0, 1)
    with free_cores_only():
        result = evaluation.falsify(graph, data, max_permutations, significance_level, ctx.n_jobs)
    result["metadata"] = {"num_samples": len(data), "dropped_rows": frame.dropped_rows,
                          "seed": used, "time_ms": int((time.perf_counter() - started) * 1000),
                          **ignored_columns({"traces": traces.ignored})}
    return json_object(result)


def _enough_rows(data: pd.DataFrame, minimum: int, what: str) -> pd.DataFrame:
    if len(data) < minimum:
        raise WorkerError(
            INSUFFICIENT_DATA,
            f"Insufficient data: {what} needs at least {minimum} complete rows, got {len(data)}",
            {"num_samples": len(data), "min_samples": minimum},
        )
    return data


def _require_kinds(model: FittedModel, columns: dict[str, Column], field: str) -> None:
    for node, column in columns.items():
        if column.kind != model.kinds[node] and not column.missing.all():
            raise invalid_params(
                f"{field}.{node}",
                f"the model was fitted on {model.kinds[node]} values, got {column.kind}",
            )


def _require_known_categories(model: FittedModel, data: pd.DataFrame, field: str) -> None:
    for node, known in model.categories.items():
        if node not in data:
            continue  # a column the question does not read
        unknown = sorted(set(data[node]) - set(known))
        if unknown:
            raise invalid_params(
                f"{field}.{node}", f"categories not seen when fitting: {unknown[:5]}"
            )


@contextmanager
def _querying(ctx: WorkerContext, stage: str) -> Iterator[None]:
    """A query's computation: its ``progress`` stage announced, then the block run with
    OpenMP capped at the cores other runnable tasks leave free (contention.py), then the
    store back within its budget (the query may have built lookup tables)."""
    ctx.progress(stage, 0, 1)
    try:
        with free_cores_only():
            yield
    finally:
        ctx.store.rebalance()


def sample(
    ctx: WorkerContext,
    model_id: str,
    kind: str,
    interventions: Any,
    observed: Any,
    num_samples: int,
    query_nodes: list[Any] | None,
    seed: int | None,
    return_samples: bool,
    *,
    columns: ResultEncoding = "json",
) -> dict[str, Any]:
    """``sample``'s checked params; ``columns`` (not a wire param) is how the connection
    reads numeric sample columns. ``sampling_time_ms`` is the draw and its statistics:
    what the samples cost to send is the protocol's, not the sampling's (attached parts
    travel during the statistics; what of their journey outlasts them is not counted)."""
    started = time.perf_counter()
    model = ctx.store.get(model_id)
    parsed = parse_interventions(interventions, model.kinds, model.categories)
    sampling.check_kind(kind, parsed, observed)
    ignored: dict[str, list[str]] = {}
    observed_rows = None if observed is None else _rows(
        ctx, model, observed, "observed", needs.sample(model.scm.graph, kind, parsed), ignored
    )
    count = num_samples if observed_rows is None else len(observed_rows)  # one per row
    _require_draw_cells(ctx, model, count, "num_samples")
    nodes = checks.optional_node_list(query_nodes, model.graph.nodes, "query_nodes") or list(
        model.graph.nodes
    )
    seed_used = effective_seed(seed)
    with _querying(ctx, "sampling"):
        drawn = sampling.draw(model, kind, parsed, count, observed_rows, seed_used)
    drawn_columns = sampling.node_columns(drawn, model.kinds, nodes)
    sending = None
    if return_samples and columns == "attached":  # on their way while the statistics are made
        samples, parts = sampling.attached_samples(drawn_columns, model.kinds)
        sending = ctx.send_attached(parts)
    elif return_samples:
        samples = sampling.encode_samples(drawn_columns, model.kinds, columns == "binary")
    try:
        result: dict[str, Any] = {
            "statistics": sampling.node_statistics(drawn_columns, model.kinds)
        }
        sampled_ms = int((time.perf_counter() - started) * 1000)  # the parts' wait is not in it
    finally:
        if sending is not None:
            sending.join()  # the parts reach the client before the reply
    result["metadata"] = {
        "model_id": model_id,
        "kind": kind,
        "num_samples": len(drawn),
        "interventions": [i.__dict__ for i in parsed],
        "seed": seed_used,
        "sampling_time_ms": sampled_ms,
        **ignored_columns(ignored),
    }
    if return_samples:
        result["samples"] = samples
    return json_object(result)


# -- causal questions (questions.py does the DoWhy work) -------------------------------


def seeded(seed: int | None) -> int:
    """Seed DoWhy's global RNG from the request (or a fresh seed, reported back)."""
    used = effective_seed(seed)
    gcm_seed(used)
    return used


def gcm_seed(seed: int) -> None:
    from .dowhy_api import seed_global

    seed_global(seed)


def with_meta(result: dict[str, Any], model_id: str, seed: int, started: float,
              ignored: dict[str, list[str]] | None = None) -> dict[str, Any]:
    result["metadata"] = {"model_id": model_id, "seed": seed,
                          "time_ms": int((time.perf_counter() - started) * 1000),
                          **ignored_columns(ignored or {})}
    return json_object(result)


def ignored_columns(ignored: dict[str, list[str]]) -> dict[str, Any]:
    """The metadata naming the given columns an answer did not read (field → names), if any."""
    named = {field: names for field, names in ignored.items() if names}
    return {"ignored_columns": named} if named else {}


def _require_draw_cells(ctx: WorkerContext, model: FittedModel, count: int, field: str) -> None:
    """A draw of ``count`` samples holds count × every node of the model at once.

    Checked after every knob's own limit, so a knob over its maximum is named as such.
    """
    checks.require_cells(count, len(model.graph.nodes), ctx.limits, field)


def _rows(ctx: WorkerContext, model: FittedModel, value: Any, field: str, reads: list[str],
          ignored: dict[str, list[str]]) -> pd.DataFrame:
    """Complete rows for a question (observed, anomalous, old/new), checked like traces: the
    columns of ``reads`` (needs.py) only; the others given are named in ``ignored[field]``."""
    if not reads and isinstance(value, dict):  # nothing is read but how many rows there are
        reads = [node for node in model.graph.nodes if node in value][:1]
    columns = checks.parse_traces(value, reads, ctx.limits, field=field)
    ignored[field] = columns.ignored
    _require_kinds(model, columns, field)
    frame = to_frame(columns)
    if frame.dropped_rows:
        raise invalid_params(field, f"{frame.dropped_rows} rows have missing values")
    if frame.data.empty:
        raise invalid_params(field, "needs at least one row")
    _require_known_categories(model, frame.data, field)
    return frame.data


# -- the causal questions: one template ------------------------------------------------

@dataclass
class Asked:
    """One question as its model checks see it: the target, the params checked so far (in
    ``against_model`` order), and the given columns of rows they did not read."""

    target: str
    params: dict[str, Any]
    ignored: dict[str, list[str]]


#: a param only the fitted model can check: ``check(ctx, model, value, field, asked)`` → its
#: checked form
AgainstModel = Callable[[WorkerContext, FittedModel, Any, str, Asked], Any]


@dataclass(frozen=True)
class Question:
    """One causal question: which params the model checks, and what answers it.

    ``compute(model, target, **params)`` gets the declared params but ``model_id``,
    ``seed`` and the bootstrap's (``Uncertainty``), those in ``against_model`` checked
    against the model first, in that order. ``draws`` names the knob whose count of
    samples of every node is drawn at once. ``estimates`` names the answer's fields a
    bootstrap summarises, each with the field its intervals go in.
    """

    compute: Callable[..., dict[str, Any]]
    draws: str
    against_model: dict[str, AgainstModel]
    estimates: dict[str, str]
    #: ``compute`` takes the worker's joblib processes as ``n_jobs``
    parallel: bool = False


@dataclass(frozen=True)
class Uncertainty:
    """A question's bootstrap params: ``confidence`` None asks for the point answer only."""

    confidence: float | None
    num_bootstrap: int
    refit: bool

    @classmethod
    def taken_from(cls, params: dict[str, Any]) -> Uncertainty:
        return cls(params.pop("confidence"), params.pop("num_bootstrap"), params.pop("refit"))

    def require_rows(self, model: FittedModel) -> None:
        """A refit resamples the training rows: a model stored without them cannot."""
        if self.confidence is not None and self.refit and model.data is None:
            raise invalid_params(
                "refit", "this model was stored without its training rows (by a worker older "
                "than intervals), so it cannot be refitted on resampled rows: fit it again, "
                "or ask with refit: false",
            )

    def metadata(self) -> dict[str, Any]:
        if self.confidence is None:
            return {}
        return {"confidence": self.confidence, "num_bootstrap": self.num_bootstrap,
                "refit": self.refit}


def ask(ctx: WorkerContext, name: str, model_id: str, target: Any, seed: int | None,
        **params: Any) -> dict[str, Any]:
    """The causal question ``name`` (``QUESTIONS``) with its declared, checked params.

    Every question goes the same way: the model, its node, the params only the model can
    check, the draw's size, the seed, then DoWhy's work capped at the free cores: the
    answer, or with ``confidence`` the bootstrap's summary of its replicates.
    """
    question = QUESTIONS[name]
    started = time.perf_counter()
    uncertainty = Uncertainty.taken_from(params)
    model = ctx.store.get(model_id)
    target = questions.require_node(model, target)
    asked = Asked(target, params, {})
    for param, check in question.against_model.items():
        params[param] = check(ctx, model, params[param], param, asked)
    _require_draw_cells(ctx, model, params[question.draws], question.draws)
    uncertainty.require_rows(model)
    used = seeded(seed)
    with _querying(ctx, "computing"):
        result = _answer(ctx, question, model, target, params, uncertainty, used)
    answer = with_meta(result, model_id, used, started, asked.ignored)
    answer["metadata"].update(uncertainty.metadata())
    return answer


def _answer(ctx: WorkerContext, question: Question, model: FittedModel, target: str,
            params: dict[str, Any], uncertainty: Uncertainty, seed: int) -> dict[str, Any]:
    """The point answer, or the bootstrap's: replicates in the worker's processes, each
    asking with one thread (``n_jobs`` 1), summarised."""
    if uncertainty.confidence is None:
        return question.compute(model, target, **params, **_n_jobs(question, ctx.n_jobs))
    job = bootstrap.Replicate(question.compute, model, target,
                              {**params, **_n_jobs(question, 1)}, uncertainty.refit)
    answers = bootstrap.replicates(job, seed, uncertainty.num_bootstrap, ctx.n_jobs, ctx.cancel)
    return bootstrap.summarise(answers, question.estimates, uncertainty.confidence)


def _n_jobs(question: Question, n_jobs: int) -> dict[str, int]:
    return {"n_jobs": n_jobs} if question.parallel else {}


def _upstream_rows(
    ctx: WorkerContext, model: FittedModel, value: Any, field: str, asked: Asked
) -> pd.DataFrame:
    """Rows of the target and its ancestors: all that anomaly attribution and
    ``gcm.distribution_change`` read."""
    return _rows(ctx, model, value, field, needs.upstream(model.scm.graph, asked.target),
                 asked.ignored)


def _effect_observed(
    ctx: WorkerContext, model: FittedModel, value: Any, field: str, asked: Asked
) -> Any:
    """``effect``'s observed rows, if given: the columns its two arms read (needs.py)."""
    if value is None:
        return None
    arms = asked.params["alternative"], asked.params["reference"]
    return _rows(ctx, model, value, field, needs.effect(model.scm.graph, asked.target, *arms),
                 asked.ignored)


def _interventions(
    ctx: WorkerContext, model: FittedModel, value: Any, field: str, asked: Asked | None = None
) -> Any:
    return parse_interventions(value, model.kinds, model.categories, field)


def _some_interventions(
    ctx: WorkerContext, model: FittedModel, value: Any, field: str, asked: Asked
) -> Any:
    parsed = _interventions(ctx, model, value, field)
    if not parsed:
        raise invalid_params(field, "needs at least one intervention")
    return parsed


QUESTIONS: Final[dict[str, Question]] = {
    "effect": Question(questions.effect, "num_samples", {
        "alternative": _some_interventions, "reference": _interventions,
        "observed": _effect_observed}, {"effect": "interval"}),
    "arrow_strength": Question(questions.arrow_strength, "num_samples_conditional", {},
                               {"strengths": "intervals"}, parallel=True),
    "influence": Question(questions.influence, "num_training_samples", {},
                          {"influence": "intervals"}),
    "anomaly": Question(questions.anomaly, "num_distribution_samples", {"rows": _upstream_rows},
                        {"attributions": "intervals", "scores": "score_intervals"}),
    "distribution_change": Question(questions.distribution_change, "num_samples",
                                    {"old": _upstream_rows, "new": _upstream_rows},
                                    {"attributions": "intervals"}),
}
