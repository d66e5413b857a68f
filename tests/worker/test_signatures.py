"""Each RPC method registered once (api/registry.py, api/methods.py), and the docs held to it.

docs/PROTOCOL.md lists every method's params (``name {a, b?, c?}``, ``?`` = optional)
and, for the causal questions, each sample-count knob's default and limit; it names the
control requests and says how a cancel stops each computation: all must say what the
registrations say. The handlers (and the services behind them) must take exactly the
declared params, so no signature is written twice with different names.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from scm_worker.api import methods, signatures
from scm_worker.api.registry import Registry
from scm_worker.api.signatures import NO_PARAMS, Signature, anything
from scm_worker.context import WorkerContext
from scm_worker.engine.store import ModelStore
from scm_worker.errors import INVALID_PARAMS, LIMIT_EXCEEDED, WorkerError
from scm_worker.limits import Limits

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
REGISTERED = methods.rpc.methods(test_methods=True)
DECLARED = {name: method.params for name, method in REGISTERED.items()}
QUESTIONS = ("effect", "arrow_strength", "influence", "anomaly", "distribution_change")


def documented_lists() -> dict[str, list[tuple[str, bool]]]:
    """``name {a, b?: ..., c}`` in PROTOCOL.md → [(param, optional)], in written order."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for name, body in re.findall(r"`([$/A-Za-z_.]+) \{([^}`]*)\}`", PROTOCOL.read_text(), flags=re.S):
        items = [item.strip() for item in body.split(",")]
        parsed = [re.match(r"(\w+)(\??)", item) for item in items]
        found[name] = [(m.group(1), bool(m.group(2))) for m in parsed if m is not None]
    return found


def question_rows() -> dict[str, tuple[str, str]]:
    """The causal-question table: method → (params cell, knobs cell)."""
    rows = {}
    for line in PROTOCOL.read_text().splitlines():
        match = re.match(r"\| `(\w+)` \| (.*?) \| .*? \| (.*?) \|$", line)
        if match and match.group(1) in QUESTIONS:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


@pytest.mark.parametrize("name", sorted(set(DECLARED) - set(QUESTIONS)))
def test_each_methods_documented_params_are_its_declared_params(name: str) -> None:
    declared = [(p.name, not p.required) for p in DECLARED[name].params]
    documented = documented_lists()
    if not declared:
        assert f"`{name}`" in PROTOCOL.read_text(), f"{name} is not documented"
        assert name not in documented
        return
    assert documented.get(name) == declared, f"PROTOCOL.md's {name} params"


@pytest.mark.parametrize("name", QUESTIONS)
def test_each_questions_documented_params_and_knobs_are_declared(name: str) -> None:
    params_cell, knobs_cell = question_rows()[name]
    declaration = DECLARED[name]
    knobs = {p.name: (p.default, p.limit) for p in declaration.params if p.limit is not None}
    documented_knobs = {
        knob: (int(default.replace(",", "")), int(limit.replace(",", "")))
        for knob, default, limit in re.findall(r"`(\w+)` ([\d,]+) / ([\d,]+)", knobs_cell)
    }
    assert documented_knobs == knobs
    others = [(m.group(1), bool(m.group(2))) for m in re.finditer(r"`(\w+)(\??)`", params_cell)]
    # "All take model_id and seed"; a param with a documented default is optional too
    expected = [(p.name, not p.required) for p in declaration.params
                if p.name not in knobs and p.name not in ("model_id", "seed")]
    optional_by_default = {p.name for p in declaration.params if not p.required and f"`{p.name}`:" in params_cell}
    optional_by_note = {p.name for p in declaration.params if f"`{p.name}` (interventions, may be empty)" in params_cell}
    assert [(n, o or n in optional_by_default | optional_by_note) for n, o in others] == expected
    assert [p.name for p in declaration.params][0] == "model_id" and "seed" in declaration.names


def documented_control() -> set[str]:
    """The methods PROTOCOL.md says a connection's reader answers as they arrive."""
    paragraph = PROTOCOL.read_text().split("**Control requests are answered at once")[1]
    return set(re.findall(r"`([$/\w.]+)`", paragraph.split("are answered by")[0]))


def documented_cancels() -> dict[str, str]:
    """``$/cancelRequest``'s bullets: method → how a running one stops."""
    section = PROTOCOL.read_text().split("### `$/cancelRequest")[1].split("\n### ")[0]
    kinds = {"stops handing": "checkpoint", "are interrupted": "interrupt", "run to their end": "finish"}
    found: dict[str, str] = {}
    for bullet in re.findall(r"^- (.*?)(?=^- |^\S|\Z)", section, flags=re.M | re.S):
        kind = next(kind for phrase, kind in kinds.items() if phrase in bullet)
        names = re.findall(r"`([\w.*]+)`", bullet.split("(")[0])
        names += list(QUESTIONS) if "the causal questions" in bullet else []
        for name in names:
            matched = [n for n in REGISTERED if n == name or name.endswith("*") and n.startswith(name[:-1])]
            assert matched, f"PROTOCOL.md names {name!r}, which is not a method"
            found.update(dict.fromkeys(matched, kind))
    return found


def test_the_control_requests_documented_are_the_ones_registered_runs_control() -> None:
    assert documented_control() == methods.rpc.control()
    assert methods.rpc.control() == {n for n, m in REGISTERED.items() if m.runs == "control"}


def test_how_a_cancel_stops_each_queued_method_is_documented_as_registered() -> None:
    queued = {n: m.cancel for n, m in REGISTERED.items() if m.runs == "compute" and not m.test_only}
    assert documented_cancels() == queued


def context() -> WorkerContext:
    return WorkerContext(Limits(), ModelStore(4))


def test_every_served_method_is_registered_once_with_its_declared_params() -> None:
    ctx = context()
    assert set(methods.method_table(ctx)) == {n for n, m in REGISTERED.items() if not m.test_only}
    ctx.test_methods = True
    assert set(methods.method_table(ctx)) == set(DECLARED) and all(
        m.name == n for n, m in methods.method_table(ctx).items())
    assert set(methods.rpc.table(test_methods=True)) == set(DECLARED)


def test_the_registry_refuses_a_second_registration_and_a_handler_unlike_its_declaration() -> None:
    registry = Registry()

    @registry.method("echo", Signature((anything("text"),)))
    def echo(ctx: WorkerContext, text: str) -> str:
        return text

    with pytest.raises(ValueError, match="registered twice"):
        registry.method("echo", NO_PARAMS)(lambda ctx: None)
    with pytest.raises(TypeError, match=r"takes \['text'\], its declaration \['words'\]"):
        registry.method("echo2", Signature((anything("words"),)))(echo)
    with pytest.raises(ValueError, match="control"):
        registry.method("ping", NO_PARAMS, runs="control", cancel="interrupt")
    assert set(registry.table(test_methods=False)) == {"echo"} and registry.control() == frozenset()


@pytest.mark.parametrize("name", ["evaluate", "sample"])
def test_the_services_behind_pass_through_handlers_take_the_declared_params(name: str) -> None:
    from scm_worker.engine import services

    parameters = list(inspect.signature(getattr(services, name)).parameters.values())[1:]
    taken = [p.name for p in parameters if p.kind is not p.KEYWORD_ONLY]  # keyword-only: not wire
    assert taken == list(DECLARED[name].names)


@pytest.mark.parametrize("name", QUESTIONS)
def test_each_question_the_template_asks_takes_the_declared_params(name: str) -> None:
    from scm_worker.engine import services

    question = services.QUESTIONS[name]
    parameters = list(inspect.signature(question.compute).parameters.values())[1:]
    taken = {p.name for p in parameters if p.kind is not p.KEYWORD_ONLY}  # n_jobs: not wire
    bootstrap = {p.name for p in signatures.UNCERTAINTY}  # ask's own (services.Uncertainty)
    assert not taken & bootstrap
    assert taken | {"model_id", "seed"} | bootstrap == set(DECLARED[name].names)
    assert set(question.against_model) <= taken and question.draws in taken
    assert REGISTERED[name].cancel == "interrupt"


def refused(name: str, params: Any, limits: Limits | None = None) -> WorkerError:
    with pytest.raises(WorkerError) as caught:
        DECLARED[name].bind(params, limits or Limits())
    return caught.value


def test_binding_fills_defaults_and_checks_each_param_before_any_work() -> None:
    checked = DECLARED["effect"].bind({"model_id": "m-0123456789abcdef", "target": "Y", "alternative": []},
                                      Limits())
    assert checked["num_samples"] == 2000 and checked["num_bootstrap"] == 20 and checked["seed"] is None
    assert DECLARED["sample"].bind(["m-0123456789abcdef", "interventional"], Limits())["kind"] == "interventional"
    batch = DECLARED["batch.fit"].bind({"requests": [], "scheduler": " tcp://h:1 ", "insecure": True}, Limits())
    assert batch == {"requests": [], "scheduler": "tcp://h:1", "persist": False, "connect_timeout": 5.0,
                     "insecure": True, "tls_ca_file": None, "tls_cert": None, "tls_key": None}
    assert DECLARED["batch.fit"].bind({"requests": [], "scheduler": "tcp://localhost:1", "connect_timeout": None},
                                      Limits())["connect_timeout"] == 5.0
    error = refused("effect", {"model_id": "m-0123456789abcdef", "target": "Y", "alternative": [],
                               "num_bootstrap": 201})
    assert error.code == LIMIT_EXCEEDED and error.data["field"] == "num_bootstrap"
    over = refused("sample", {"model_id": "m-0123456789abcdef", "num_samples": 11}, Limits(max_num_samples=10))
    assert over.code == LIMIT_EXCEEDED and over.data["field"] == "num_samples"
    for params, field in (({"model_id": "x"}, "model_id"), ({}, "model_id"),
                          ({"model_id": "m-0123456789abcdef", "nope": 1}, "nope"),
                          (["m-0123456789abcdef", "observational", None, None, 5, None, None, True, 9], "params"),
                          ({"model_id": "m-0123456789abcdef", "kind": "psychic"}, "kind")):
        error = refused("sample", params)
        assert error.code == INVALID_PARAMS and error.data["field"] == field, (params, error.data)


def test_batch_fit_takes_plain_tcp_on_loopback_only_unless_insecure() -> None:
    def scheduler(address: str, **params: object) -> str:
        return DECLARED["batch.fit"].bind({"requests": [], "scheduler": address, **params}, Limits())["scheduler"]

    assert scheduler("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert scheduler("tcp://[::1]") == "tcp://[::1]:8786"
    assert scheduler("tcp://LocalHost:9") == "tcp://localhost:9"
    assert scheduler("tls://cluster.example:8786") == "tls://cluster.example:8786"  # files from Dask's config
    assert scheduler("tcp://10.0.0.5:8786", insecure=True) == "tcp://10.0.0.5:8786"
    for address, field in (("tcp://10.0.0.5:8786", "insecure"), ("tcp://localhost.evil.example:1", "insecure"),
                           ("tcp://127.0.0.1.nip.io:1", "insecure"), ("ws://127.0.0.1:1", "scheduler"),
                           ("tcp://127.0.0.1:1/x", "scheduler"), ("tcp://127.0.0.1:99999", "scheduler")):
        error = refused("batch.fit", {"requests": [], "scheduler": address})
        assert error.code == INVALID_PARAMS and error.data["field"] == field, (address, error.data)


def test_reports_samples_are_checked_as_sample_params_under_a_prefix() -> None:
    checked = DECLARED["report"].bind({"model_id": "m-0123456789abcdef",
                                       "samples": {"interventions": [{"node": "X", "value": 1}]}}, Limits())
    assert checked["samples"]["kind"] == "interventional" and checked["samples"]["num_samples"] == 1000
    error = refused("report", {"model_id": "m-0123456789abcdef", "samples": {"num_samples": 0}})
    assert error.data["field"] == "samples.num_samples"
    assert refused("report", {"model_id": "m-0123456789abcdef", "samples": {"return_samples": False}}
                   ).data["field"] == "samples.return_samples"


def test_the_change_measures_declared_are_the_ones_implemented() -> None:
    from scm_worker.engine import questions

    assert set(signatures.CHANGE_MEASURES) == set(questions.CHANGE_MEASURES)
