"""The DoWhy names the worker uses from below ``dowhy.gcm``'s own exports, in one place.

``dowhy.gcm`` exports the queries (``fit``, ``draw_samples``, ``arrow_strength``, ...);
the worker also fits nodes itself (so it books the mechanism the way ``gcm.fit`` does)
and validates the graph before its own samplers draw (as DoWhy's samplers do). The names
that needs are public, without an underscore, in documented modules
(``dowhy.gcm.causal_models``, ``dowhy.gcm.fitting_sampling``; for ``evaluate`` and
``falsify``, ``dowhy.gcm.model_evaluation`` and ``dowhy.gcm.falsify``), but ``dowhy.gcm`` does not
re-export them, so a release may move them more easily than its exports: they are
imported here and nowhere else, and tests/worker/test_dowhy_api.py checks each one, so
an upgrade that moves one breaks one file, loudly. DoWhy's private names (model
selection's candidate lists) are not here: they live behind the gate in
``scm_worker.fast``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
from dowhy.gcm import ml
from dowhy.gcm.causal_models import (
    PARENTS_DURING_FIT,
    validate_causal_dag,
    validate_causal_model_assignment,
)
from dowhy.gcm.falsify import EvaluationResult, FalsifyConst, falsify_graph
from dowhy.gcm.fitting_sampling import fit_causal_model_of_target
from dowhy.gcm.ml import classification, regression
from dowhy.gcm.model_evaluation import EvaluateCausalModelConfig

__all__ = [
    "PARENTS_DURING_FIT",
    "EvaluateCausalModelConfig",
    "EvaluationResult",
    "FalsifyConst",
    "falsify_graph",
    "fit_causal_model_of_target",
    "ml_factory",
    "seed_global",
    "validate_causal_dag",
    "validate_causal_model_assignment",
]


def seed_global(seed: int) -> None:
    """Seed the process-global numpy and ``random`` states DoWhy draws every random number
    from, as its documented ``gcm.util.general.set_random_seed`` does (the same two calls)."""
    np.random.seed(seed)
    random.seed(seed)


def ml_factory(name: str) -> Callable[..., Any]:
    """A model factory of ``dowhy.gcm.ml`` by name (``create_ridge_regressor``), for the
    mechanisms a user sets by hand: ``dowhy.gcm.ml`` exports most, its public
    ``regression`` and ``classification`` modules the rest (``create_knn_regressor``)."""
    for module in (ml, regression, classification):
        factory = getattr(module, name, None)
        if callable(factory):
            return factory  # type: ignore[no-any-return]
    raise AttributeError(f"dowhy.gcm.ml offers no {name}")
