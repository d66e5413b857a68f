"""Mechanisms set by hand (``config.mechanisms``): the names a user may give, and their check.

One table per role maps a name to what DoWhy offers for it: a factory of
``dowhy.gcm.ml`` for regressors and classifiers, a ``scipy.stats`` continuous
distribution for roots. The engine builds from the same tables (``engine.hand_set``),
so a name is accepted exactly where it can be built. Pure Python: the check runs before
any work, and names the node (``config.mechanisms.Z``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .columns import ColumnKind, json_type
from .errors import invalid_params

#: numeric non-root nodes: name → the ``dowhy.gcm.ml`` regressor factory
REGRESSORS: Final = {
    "linear": "create_linear_regressor",
    "polynomial": "create_polynom_regressor",
    "ridge": "create_ridge_regressor",
    "lasso": "create_lasso_regressor",
    "lasso_lars_ic": "create_lasso_lars_ic_regressor",
    "elastic_net": "create_elastic_net_regressor",
    "gradient_boosting": "create_hist_gradient_boost_regressor",
    "random_forest": "create_random_forest_regressor",
    "extra_trees": "create_extra_trees_regressor",
    "knn": "create_knn_regressor",
    "support_vector": "create_support_vector_regressor",
    "ada_boost": "create_ada_boost_regressor",
    "gaussian_process": "create_gaussian_process_regressor",
}
#: categorical (and boolean) non-root nodes: name → the ``dowhy.gcm.ml`` classifier factory
CLASSIFIERS: Final = {
    "logistic_regression": "create_logistic_regression_classifier",
    "polynomial_logistic_regression": "create_polynom_logistic_regression_classifier",
    "gradient_boosting": "create_hist_gradient_boost_classifier",
    "random_forest": "create_random_forest_classifier",
    "extra_trees": "create_extra_trees_classifier",
    "decision_tree": "create_decision_tree_classifier",
    "knn": "create_knn_classifier",
    "support_vector": "create_support_vector_classifier",
    "ada_boost": "create_ada_boost_classifier",
    "gaussian_nb": "create_gaussian_nb_classifier",
    "gaussian_process": "create_gaussian_process_classifier",
}
#: roots: name → the ``scipy.stats`` continuous distribution fitted to the data
#: (``"empirical"`` is DoWhy's EmpiricalDistribution, the automatic choice)
DISTRIBUTIONS: Final = {
    "normal": "norm",
    "halfnorm": "halfnorm",
    "uniform": "uniform",
    "expon": "expon",
    "exponential": "expon",
    "lognorm": "lognorm",
    "lognormal": "lognorm",
    "gamma": "gamma",
    "beta": "beta",
    "laplace": "laplace",
    "logistic": "logistic",
    "t": "t",
    "cauchy": "cauchy",
    "halfcauchy": "halfcauchy",
    "weibull_min": "weibull_min",
    "chi2": "chi2",
    "rayleigh": "rayleigh",
    "pareto": "pareto",
    "gumbel_r": "gumbel_r",
}
EMPIRICAL: Final = "empirical"
AUTO: Final = "auto"
#: the names that take a ``degree`` (PolynomialFeatures' degree), and its bounds
POLYNOMIALS: Final = frozenset({"polynomial", "polynomial_logistic_regression"})
MAX_DEGREE: Final = 10

Role = Literal["regressor", "classifier", "root"]


@dataclass(frozen=True)
class MechanismSpec:
    """One hand-set node: its role, the name from the role's table, the optional degree."""

    node: str
    role: Role
    name: str
    degree: int | None = None

    def as_json(self) -> str | dict[str, Any]:
        """As the user may write it: the name, or ``{"model", "degree"}``."""
        return self.name if self.degree is None else {"model": self.name, "degree": self.degree}


def table(role: Role) -> dict[str, str]:
    return {"regressor": REGRESSORS, "classifier": CLASSIFIERS, "root": DISTRIBUTIONS}[role]


def role_of(kind: ColumnKind, is_root: bool) -> Role:
    if is_root:
        return "root"
    return "regressor" if kind == "numeric" else "classifier"


def names(role: Role) -> list[str]:
    """What a node of ``role`` accepts, as an error lists it."""
    extra = [AUTO, EMPIRICAL] if role == "root" else [AUTO]
    return extra + sorted(table(role))


def parse_mechanisms(
    value: Any, roots: set[str], kinds: dict[str, ColumnKind]
) -> tuple[MechanismSpec, ...]:
    """``config.mechanisms`` checked against the graph and its columns' kinds, in node
    order; ``"auto"`` entries are dropped (the same fit, the same cache key, as unset)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise invalid_params("config.mechanisms", f"must be an object, got {json_type(value)}")
    unknown = [node for node in value if node not in kinds]
    if unknown:
        raise invalid_params(f"config.mechanisms.{unknown[0]}", "not a node of the graph")
    specs = [
        parse_spec(value[node], node, role_of(kinds[node], node in roots))
        for node in kinds
        if node in value
    ]
    return tuple(spec for spec in specs if spec is not None)


def parse_spec(value: Any, node: str, role: Role) -> MechanismSpec | None:
    field = f"config.mechanisms.{node}"
    name, degree = _name_and_degree(value, field)
    if name == AUTO and degree is None:
        return None
    if role == "root" and name == EMPIRICAL and degree is None:
        return MechanismSpec(node, role, name)
    if name not in table(role):
        raise invalid_params(field, _misplaced(name, role, node))
    if degree is not None and name not in POLYNOMIALS:
        raise invalid_params(f"{field}.degree", f"{name!r} takes no degree")
    return MechanismSpec(node, role, name, degree)


def _name_and_degree(value: Any, field: str) -> tuple[str, int | None]:
    """A name, or ``{"model": name, "degree"?: k}``."""
    if isinstance(value, str):
        return value, None
    if not isinstance(value, dict):
        raise invalid_params(field, f"must be a name or {{model, degree}}, got {json_type(value)}")
    unknown = set(value) - {"model", "degree"}
    if unknown:
        raise invalid_params(f"{field}.{min(unknown)}", "unknown member")
    if not isinstance(value.get("model"), str):
        raise invalid_params(f"{field}.model", "must be a mechanism name")
    degree = value.get("degree")
    if degree is not None and (
        isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= MAX_DEGREE
    ):
        raise invalid_params(f"{field}.degree", f"must be an integer in [1, {MAX_DEGREE}]")
    return value["model"], degree


def _misplaced(name: str, role: Role, node: str) -> str:
    """Why ``name`` does not fit this node: meant for another kind of node, or unknown."""
    where = {"root": "a root", "regressor": "a numeric node with parents",
             "classifier": "a categorical node with parents"}
    other = [r for r in ("root", "regressor", "classifier") if r != role and name in table(r)]
    if name == EMPIRICAL:
        other = ["root"]
    fits = f"{name!r} is for {where[other[0]]}" if other else f"unknown mechanism {name!r}"
    return f"{fits}; {node!r} is {where[role]}: one of {names(role)}"
