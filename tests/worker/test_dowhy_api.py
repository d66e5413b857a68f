"""scm_worker.engine.dowhy_api: each DoWhy name the worker uses from below ``dowhy.gcm``'s exports.

One test per name, each checking what the worker relies on, so a DoWhy upgrade that
moves, renames or changes one fails here, by name, rather than inside a request.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from dowhy import gcm
from dowhy.gcm.ml import ClassificationModel, PredictionModel, create_linear_regressor
from dowhy.graph import get_ordered_predecessors
from scm_worker.engine import dowhy_api
from scm_worker.mechanism_specs import CLASSIFIERS, DISTRIBUTIONS, POLYNOMIALS, REGRESSORS


def chain() -> tuple[gcm.InvertibleStructuralCausalModel, pd.DataFrame]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    data = pd.DataFrame({"x": x, "y": 2 * x + rng.normal(scale=0.1, size=200)})
    scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph([("x", "y")]))
    scm.set_causal_mechanism("x", gcm.EmpiricalDistribution())
    scm.set_causal_mechanism("y", gcm.AdditiveNoiseModel(create_linear_regressor()))
    return scm, data


def test_parents_during_fit_is_where_gcm_fit_books_the_parents() -> None:
    """``causal_models.PARENTS_DURING_FIT``: the node attribute ``gcm.fit`` sets and every
    query checks; ``fitting.install`` sets it the same way."""
    scm, data = chain()
    gcm.fit(scm, data)
    booked = scm.graph.nodes["y"][dowhy_api.PARENTS_DURING_FIT]
    assert booked == get_ordered_predecessors(scm.graph, "y") == ["x"]


def test_validate_causal_model_assignment_refuses_a_node_without_a_mechanism() -> None:
    scm, _ = chain()
    dowhy_api.validate_causal_model_assignment(scm.graph, "y")
    bare = gcm.InvertibleStructuralCausalModel(nx.DiGraph([("x", "y")]))
    with pytest.raises(ValueError):
        dowhy_api.validate_causal_model_assignment(bare.graph, "y")


def test_validate_causal_dag_refuses_unfitted_unassigned_and_cyclic_graphs() -> None:
    """``causal_models.validate_causal_dag``: what ``gcm.interventional_samples`` checks first."""
    scm, data = chain()
    with pytest.raises(RuntimeError, match="not fitted"):
        dowhy_api.validate_causal_dag(scm.graph)
    gcm.fit(scm, data)
    dowhy_api.validate_causal_dag(scm.graph)
    with pytest.raises(ValueError):
        dowhy_api.validate_causal_dag(nx.DiGraph([("x", "y")]))
    cyclic = scm.graph.copy()
    cyclic.add_edge("y", "x")
    with pytest.raises(RuntimeError):
        dowhy_api.validate_causal_dag(cyclic)


def test_fit_causal_model_of_target_fits_one_node() -> None:
    """``fitting_sampling.fit_causal_model_of_target``: fits the node's mechanism on its
    own (and its parents') columns, so a root drawn afterwards samples the data."""
    scm, data = chain()
    dowhy_api.fit_causal_model_of_target(scm, "x", data)
    drawn = scm.causal_mechanism("x").draw_samples(50)
    assert set(np.ravel(drawn)) <= set(data["x"])


def test_evaluate_causal_model_config_takes_the_knobs_evaluate_sets() -> None:
    """``model_evaluation.EvaluateCausalModelConfig``: ``evaluate``'s permutations, level
    and processes; its folds are the minimum rows ``evaluate`` asks for."""
    config = dowhy_api.EvaluateCausalModelConfig(
        max_num_permutations_falsify=7, falsify_graph_significance_level=0.1, n_jobs=1)
    assert config.max_num_permutations_falsify == 7 and config.falsify_graph_significance_level == 0.1
    assert dowhy_api.EvaluateCausalModelConfig().mechanism_evaluation_kfolds == 5


def test_falsify_graph_returns_the_evaluation_result_evaluate_reads() -> None:
    """``falsify.falsify_graph`` → ``falsify.EvaluationResult``: the summary keyed by
    ``FalsifyConst`` members that evaluation.falsification_json reads."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=100)
    y = x + rng.normal(size=100)
    data = pd.DataFrame({"x": x, "y": y, "z": y + rng.normal(size=100)})
    result = dowhy_api.falsify_graph(nx.DiGraph([("x", "y"), ("y", "z")]), data, n_permutations=50,
                                     show_progress_bar=False, n_jobs=1)
    assert isinstance(result, dowhy_api.EvaluationResult)
    const = dowhy_api.FalsifyConst
    lmc = result.summary[const.VALIDATE_LMC]
    assert len(lmc[const.PERM_VIOLATIONS]) == 6  # 3! permutations, each once
    for key in (const.N_TESTS, const.GIVEN_VIOLATIONS, const.F_GIVEN_VIOLATIONS,
                const.F_PERM_VIOLATIONS, const.P_VALUE, const.LOCAL_VIOLATION_INSIGHT):
        assert key in lmc
    assert const.P_VALUE in result.summary[const.VALIDATE_TPA] and const.MEC in result.summary
    assert isinstance(result.falsified, bool) and isinstance(result.can_evaluate, bool)
def test_ml_factory_builds_every_model_a_user_may_set_by_name() -> None:
    """``ml_factory``: each name of ``mechanism_specs``' tables is a factory DoWhy offers,
    making the kind of model its table promises (a name accepted is a name that builds)."""
    for table, kind in ((REGRESSORS, PredictionModel), (CLASSIFIERS, ClassificationModel)):
        for name, factory in table.items():
            model = dowhy_api.ml_factory(factory)(**({"degree": 2} if name in POLYNOMIALS else {}))
            assert isinstance(model, kind), name
            if kind is PredictionModel:
                assert not isinstance(model, ClassificationModel), name
    with pytest.raises(AttributeError):
        dowhy_api.ml_factory("create_no_such_regressor")


def test_every_root_distribution_a_user_may_name_is_a_scipy_continuous_one() -> None:
    for name, scipy_name in DISTRIBUTIONS.items():
        assert isinstance(getattr(scipy.stats, scipy_name), scipy.stats.rv_continuous), name
