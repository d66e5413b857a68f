"""`scm evaluate` / `scm falsify` tables from worker results (the real worker's shapes are
held to these in tests/e2e/test_cli_evaluation.py)."""

from __future__ import annotations

from typing import Any

from scm_client.cli.evaluation import evaluation_text, falsification_text
from scm_client.results import EvaluateResult, FalsifyResult


def falsification(**changes: Any) -> dict[str, Any]:
    wire = {"falsified": True, "falsifiable": True, "can_evaluate": True, "significance_level": 0.05,
            "p_value": 0.1, "permutations": 120, "max_permutations": 200,
            "local_markov": {"tests": 8, "violations": 2, "fraction": 0.25,
                             "permutation_violations": [2, 5, 7], "permutation_fractions": [0.25, 0.6, 0.9]},
            "equivalence_class": {"permutations": 4, "p_value": 0.033},
            "tests": [{"node": "X1", "non_descendant": "X2", "p_value": 0.0, "violated": True}]}
    return {**wire, **changes}


def test_a_rejected_graph_names_its_violations_and_the_permutations_run() -> None:
    text = falsification_text(FalsifyResult.from_wire(falsification()))
    assert text.startswith("graph falsification: REJECTED (p-value 0.100, significance level 0.05)")
    assert "120 (at most 200)" in text and "2 of 8 tests (permutations: 2–7, mean 4.7)" in text
    assert text.splitlines()[-1].split() == ["X1", "X2", "0.0000", "violated"]


def test_a_graph_with_nothing_to_test_cannot_be_evaluated() -> None:
    result = FalsifyResult.from_wire(falsification(falsified=None, falsifiable=None, can_evaluate=False,
                                                   tests=[]))
    assert result.falsified is None
    assert "cannot be evaluated" in falsification_text(result)


def test_evaluation_text_shows_each_part_that_ran() -> None:
    wire = {"model_id": "m-0123456789abcdef", "nodes": {"Y": {"r2": 0.9, "mse": 0.1, "nmse": 0.3}},
            "r2_scores": {"Y": 0.9}, "accuracy": {"C": 0.8}, "f1_scores": {"C": 0.75}, "mean_r2": 0.9,
            "passed": True, "threshold": 0.7, "rule": "mean", "failed_nodes": [],
            "mechanisms": {"X": {"root": True, "crps": None, "kl_divergence": 0.05, "mse": None, "nmse": None,
                                 "r2": None, "f1": None},
                           "Y": {"root": False, "crps": 0.2, "kl_divergence": None, "mse": 0.1, "nmse": 0.3,
                                 "r2": 0.9, "f1": None,
                                 "baselines": {"total": 7, "significantly_better": 2,
                                               "best_model": "AdditiveNoiseModel(RandomForest)",
                                               "best_crps": 0.1}}},
            "overall_kl_divergence": 0.02, "metadata": {"num_samples": 100, "dropped_rows": 0, "seed": 4}}
    result = EvaluateResult.from_wire(wire)
    assert result.falsification is None and result.overall_kl_divergence == 0.02
    text = evaluation_text(result)
    assert "on 100 rows (seed 4)" in text and "accuracy" in text and "0.7500" in text
    assert "2 of 7 better; best AdditiveNoiseModel(RandomForest) (CRPS 0.100)" in text
    assert "overall KL divergence, generated vs observed: 0.0200" in text
    assert "invertibility" not in text and "falsification" not in text
