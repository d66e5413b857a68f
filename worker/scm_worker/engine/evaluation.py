"""``evaluate`` and ``falsify``: DoWhy's model evaluation and graph falsification, as JSON.

``evaluate`` runs ``gcm.evaluate_causal_model`` once per part asked, each seeded with the
request's seed: the same model, rows and seed give, part by part, the numbers DoWhy
gives for that part (tests/worker/test_evaluation.py compares them).
Beside it, the stored model's own scores on the given rows (``nodes``, ``r2_scores``,
``accuracy``, ``f1_scores``) use DoWhy's definitions: the conditional expectation as the
prediction, scikit-learn's R² and MSE, DoWhy's ``nmse`` (RMSE over the standard
deviation), macro F1 for categorical nodes.

``falsify`` needs no fitted model: ``falsify_graph`` on the graph and the rows. The
permutations reported are those DoWhy ran, never more than the graph has (n!).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy import gcm
from sklearn.metrics import f1_score

from ..checks import Graph
from . import scoring
from .dowhy_api import (
    EvaluateCausalModelConfig,
    EvaluationResult,
    FalsifyConst,
    falsify_graph,
    seed_global,
)
from .fitting import FittedModel, dowhy_errors, predict_non_roots


@dataclass(frozen=True)
class Parts:
    """What ``evaluate`` asks of ``gcm.evaluate_causal_model`` (its flags and config)."""

    mechanisms: bool = True
    compare_mechanism_baselines: bool = False
    invertibility: bool = False
    overall_kl_divergence: bool = True
    falsify_graph: bool = False
    max_permutations: int = 50
    falsify_graph_significance_level: float = 0.2

    def any(self) -> bool:
        return self.mechanisms or self.invertibility or self.overall_kl_divergence or (
            self.falsify_graph)

    def min_rows(self) -> int:
        """DoWhy's mechanism evaluation is a k-fold cross-validation: k rows at least."""
        return EvaluateCausalModelConfig().mechanism_evaluation_kfolds if self.mechanisms else 2


# -- the stored model's scores on the given rows ----------------------------------------


def node_scores(
    model: FittedModel, data: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """Numeric nodes' ``{r2, mse, nmse}``; categorical nodes' accuracy and macro F1."""
    nodes: dict[str, Any] = {}
    accuracy: dict[str, float] = {}
    f1: dict[str, float] = {}
    with dowhy_errors("evaluation"):
        predictions = predict_non_roots(model.scm, data)
    for node, predicted in predictions.items():
        actual = data[node].to_numpy()
        if model.kinds[node] == "numeric":
            nodes[node] = {
                "r2": scoring.r2(actual, predicted),
                "mse": scoring.mse(actual, predicted),
                "nmse": scoring.nmse(actual, predicted),
            }
        else:
            accuracy[node] = scoring.accuracy(actual, predicted)
            f1[node] = float(f1_score(actual.astype(str), np.asarray(predicted).astype(str),
                                      average="macro", zero_division=0))
    return nodes, accuracy, f1


# -- gcm.evaluate_causal_model ------------------------------------------------------------


#: ``evaluate_causal_model``'s flag of each part, in DoWhy's order
PART_FLAGS = {
    "mechanisms": "evaluate_causal_mechanisms",
    "invertibility": "evaluate_invertibility_assumptions",
    "overall_kl_divergence": "evaluate_overall_kl_divergence",
    "falsify_graph": "evaluate_causal_structure",
}


def evaluate_model(
    model: FittedModel, data: pd.DataFrame, parts: Parts, seed: int, n_jobs: int
) -> dict[str, Any]:
    """The parts asked for, each as DoWhy computed it; absent parts are absent keys.

    Each part is its own ``evaluate_causal_model`` call, seeded with ``seed``: in one call
    the later parts draw from whatever random state the earlier left, and DoWhy's
    mechanism evaluation changes the process's state only when it runs in-process
    (``n_jobs=1``), so one call's answer would depend on the worker's processes and on
    which other parts were asked. Seeded apart, each part is DoWhy's answer for that part
    alone with that seed, at any concurrency.
    """
    config = EvaluateCausalModelConfig(
        max_num_permutations_falsify=parts.max_permutations,
        falsify_graph_significance_level=parts.falsify_graph_significance_level,
        n_jobs=n_jobs,
    )
    report: dict[str, Any] = {}
    for part, flag in PART_FLAGS.items():
        if getattr(parts, part):
            seed_global(seed)
            with dowhy_errors("evaluation"):
                report[part] = gcm.evaluate_causal_model(
                    model.scm, data, compare_mechanism_baselines=parts.compare_mechanism_baselines,
                    config=config, **{f: f == flag for f in PART_FLAGS.values()},
                )
    return evaluation_json(report, parts)


def evaluation_json(report: dict[str, Any], parts: Parts) -> dict[str, Any]:
    """Each part's ``CausalModelEvaluationResult`` member, as JSON."""
    out: dict[str, Any] = {}
    if "mechanisms" in report:
        out["mechanisms"] = {
            str(node): mechanism_json(performance, parts)
            for node, performance in report["mechanisms"].mechanism_performances.items()
        }
    if "invertibility" in report:
        out["invertibility"] = invertibility_json(report["invertibility"].pnl_assumptions)
    if "overall_kl_divergence" in report:
        out["overall_kl_divergence"] = float(report["overall_kl_divergence"].overall_kl_divergence)
    if "falsify_graph" in report:
        out["falsification"] = falsification_json(
            report["falsify_graph"].graph_falsification, parts.max_permutations)
    return out


def mechanism_json(performance: Any, parts: Parts) -> dict[str, Any]:
    """DoWhy's ``MechanismPerformanceResult``: CRPS, MSE, NMSE, R² (F1 for categorical
    nodes) averaged over its folds; KL divergence for roots; the baselines when compared."""
    entry: dict[str, Any] = {
        "root": bool(performance.is_root),
        **{key: _number(getattr(performance, key))
           for key in ("crps", "kl_divergence", "mse", "nmse", "r2", "f1")},
    }
    if parts.compare_mechanism_baselines and not performance.is_root:
        entry["baselines"] = {
            "total": int(performance.total_number_baselines),
            # DoWhy's rule: a baseline whose CRPS is lower by more than 0.05
            "significantly_better": _integer(performance.count_better_performance),
            "best_model": performance.best_baseline_model,
            "best_crps": _number(performance.best_baseline_performance),
        }
    return entry


def invertibility_json(assumptions: dict[Any, Any]) -> dict[str, Any]:
    """DoWhy: node → (p-value after adjustment, rejected?, significance level)."""
    return {
        str(node): {"p_value": float(p), "rejected": bool(rejected),
                    "significance_level": float(level)}
        for node, (p, rejected, level) in assumptions.items()
    }


# -- falsify_graph ------------------------------------------------------------------------


def falsify(
    graph: Graph, data: pd.DataFrame, max_permutations: int | None,
    significance_level: float, n_jobs: int,
) -> dict[str, Any]:
    """``falsify_graph`` with DoWhy's defaults but the request's permutations and level."""
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from(graph.edges)
    asked = int(1 / significance_level) if max_permutations is None else max_permutations
    with dowhy_errors("falsify"):
        result = falsify_graph(
            dag, data, significance_level=significance_level, n_permutations=asked,
            show_progress_bar=False, n_jobs=n_jobs, allow_data_subset=False,
        )
    return falsification_json(result, asked)


def falsification_json(result: EvaluationResult, asked: int) -> dict[str, Any]:
    """DoWhy's ``EvaluationResult``: the verdict, the permutations it ran (at most n! for n
    nodes, whatever was asked), the local-Markov violations of the given graph and of each
    permutation, and the tests behind the given graph's violations."""
    lmc = result.summary[FalsifyConst.VALIDATE_LMC]
    tpa = result.summary[FalsifyConst.VALIDATE_TPA]
    return {
        "falsified": _flag(result.falsified),
        "falsifiable": _flag(result.falsifiable),
        "can_evaluate": bool(result.can_evaluate),
        "significance_level": float(result.significance_level),
        "p_value": float(lmc[FalsifyConst.P_VALUE]),
        "permutations": len(lmc[FalsifyConst.PERM_VIOLATIONS]),
        "max_permutations": asked,
        "local_markov": {
            "tests": int(lmc[FalsifyConst.N_TESTS]),
            "violations": int(lmc[FalsifyConst.GIVEN_VIOLATIONS]),
            "permutation_violations": [int(v) for v in lmc[FalsifyConst.PERM_VIOLATIONS]],
            "fraction": float(lmc[FalsifyConst.F_GIVEN_VIOLATIONS]),
            "permutation_fractions": [float(v) for v in lmc[FalsifyConst.F_PERM_VIOLATIONS]],
        },
        "equivalence_class": {
            "permutations": len(result.summary.get(FalsifyConst.MEC, [])),
            "p_value": float(tpa[FalsifyConst.P_VALUE]),
        },
        "tests": [
            {"node": str(node), "non_descendant": str(other), "p_value": float(p),
             "violated": bool(violated)}
            for (node, other), (p, violated) in lmc[FalsifyConst.LOCAL_VIOLATION_INSIGHT].items()
        ],
    }


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)
