"""The mechanisms a user set by hand (``config.mechanisms``), built from DoWhy's own parts.

The names are ``mechanism_specs``' tables, checked before any work. A regressor is
wrapped as DoWhy's assignment wraps its own choice (``mechanism_choice.additive_noise``),
a classifier goes in a ClassifierFCM, and a root's distribution is DoWhy's
ScipyDistribution of the named ``scipy.stats`` distribution, whose ``fit`` estimates its
parameters from the data (scipy's maximum likelihood). A hand-set node skips model
selection: it costs one fit instead of DoWhy's cross-validated candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats
from dowhy import gcm

from ..mechanism_specs import DISTRIBUTIONS, EMPIRICAL, MechanismSpec, table
from .dowhy_api import ml_factory
from .mechanism_choice import Choice, additive_noise


def model(spec: MechanismSpec) -> Any:
    """A fresh, unfitted DoWhy model of the spec's name (and degree, where it has one)."""
    factory = ml_factory(table(spec.role)[spec.name])
    return factory() if spec.degree is None else factory(degree=spec.degree)


def hand_set_choice(spec: MechanismSpec, y: np.ndarray) -> Choice:
    """A non-root node's mechanism as the user set it: no candidates were scored."""
    if spec.role == "classifier":
        return Choice(gcm.ClassifierFCM(model(spec)), [])
    return Choice(additive_noise(model(spec), y), [])


def root_mechanism(spec: MechanismSpec | None) -> Any:
    """DoWhy's automatic root (an empirical distribution), or the user's distribution."""
    if spec is None or spec.name == EMPIRICAL:
        return gcm.EmpiricalDistribution()
    return gcm.ScipyDistribution(getattr(scipy.stats, DISTRIBUTIONS[spec.name]))
