"""No module outside scm_worker.fast reads an upstream private name.

The sources are parsed (nothing is imported): a module outside ``fast/`` may not import
a path of DoWhy, scikit-learn, joblib or jsonrpcserver with a component starting with a
single underscore or named by import-linter's contract on private upstream modules
(pyproject.toml, which ``make lint`` checks too), import such a name from one, name such a
path in a string (``sys.modules.get(...)``), nor read a private attribute of an upstream
name (``auto._LIST_OF_...``) or of any object, unless the worker defines that attribute
itself (a fitted model's ``_predictors`` is scikit-learn's).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

UPSTREAM = ("dowhy", "sklearn", "joblib", "jsonrpcserver")
WORKER = Path(__file__).resolve().parents[2] / "worker" / "scm_worker"
#: the fast paths' own package, the one place allowed to read private names
FAST = WORKER / "fast"
PYPROJECT = WORKER.parents[1] / "pyproject.toml"


def _contract() -> dict[str, Any]:
    """import-linter's contract on private upstream modules, from pyproject.toml: its
    ``forbidden_modules`` are private by their upstream's word even without an underscore
    (``jsonrpcserver.dispatcher``), and its ``ignore_imports`` hold here too."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["type"] == "forbidden_external_modules")


FORBIDDEN: list[str] = _contract()["forbidden_modules"]
IGNORED = {
    tuple(p.strip() for p in entry.split("->"))
    for entry in _contract().get("ignore_imports", [])
}


def is_private(part: str) -> bool:
    """A single leading underscore: dunders (``__version__``) are public."""
    return part.startswith("_") and not part.startswith("__")


def is_upstream(dotted: str) -> bool:
    return dotted.split(".")[0] in UPSTREAM


def forbidden_module(dotted: str) -> str | None:
    """The contract's forbidden module ``dotted`` is, or is in; None if none."""
    return next((f for f in FORBIDDEN if dotted == f or dotted.startswith(f + ".")), None)


def is_private_path(dotted: str) -> bool:
    """An upstream module path that is private: a component with a single underscore, or a
    module the contract names."""
    return is_upstream(dotted) and (
        any(map(is_private, dotted.split("."))) or forbidden_module(dotted) is not None
    )


def own_private_names() -> set[str]:
    """Every single-underscore name the worker defines itself (functions, classes,
    attributes it assigns, aliases): reading one of those is no upstream's business."""
    names: set[str] = set()
    for path in WORKER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
    return {name for name in names if is_private(name)}


OWN = own_private_names()


def stdlib_names(tree: ast.AST) -> set[str]:
    """The names ``tree`` binds to standard-library modules (``os._exit`` is not upstream's)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in sys.stdlib_module_names:
                    bound.add((alias.asname or alias.name).split(".")[0])
    return bound


def private_names(tree: ast.AST, module: str = "") -> Iterator[tuple[int, str]]:
    """(line, what) for every upstream private name ``tree`` reads: imports and attributes of
    upstream modules by path, and any other object's private attribute the worker does not
    define itself (a fitted model's ``_predictors``)."""
    upstream_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_upstream(alias.name):
                    upstream_names.add((alias.asname or alias.name).split(".")[0])
                    if is_private_path(alias.name) and not ignored(module, alias.name):
                        yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if is_upstream(node.module):
                for alias in node.names:
                    upstream_names.add(alias.asname or alias.name)
                    path = f"{node.module}.{alias.name}"
                    if is_private_path(path) and not ignored(module, node.module):
                        yield node.lineno, f"from {node.module} import {alias.name}"
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and is_private_path(node.value)):
            yield node.lineno, repr(node.value)
    stdlib = stdlib_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            of_upstream = isinstance(root, ast.Name) and root.id in upstream_names
            of_stdlib = isinstance(root, ast.Name) and root.id in stdlib
            if of_upstream or (node.attr not in OWN and not of_stdlib):
                yield node.lineno, ast.unparse(node)


def ignored(module: str, imported: str) -> bool:
    """Whether the contract's ``ignore_imports`` lets ``module`` import ``imported``."""
    forbidden = forbidden_module(imported)
    return forbidden is not None and (module, forbidden) in IGNORED


def module_name(path: Path) -> str:
    parts = path.relative_to(WORKER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scanned_modules() -> list[Path]:
    return sorted(path for path in WORKER.rglob("*.py") if FAST not in path.parents)


@pytest.mark.parametrize("path", scanned_modules(), ids=lambda p: p.relative_to(WORKER).as_posix())
def test_no_upstream_private_name_outside_fast(path: Path) -> None:
    tree = ast.parse(path.read_text())
    found = [f"line {line}: {what}" for line, what in private_names(tree, module_name(path))]
    assert not found, f"{path.relative_to(WORKER)} reads upstream private names: {found}"


@pytest.mark.parametrize("source", [
    "from sklearn.ensemble._hist_gradient_boosting import gradient_boosting",
    "import joblib.externals.loky.backend._posix_reduction",
    "from dowhy.gcm import auto\nauto._LIST_OF_POTENTIAL_REGRESSORS_GOOD",
    "import sklearn\nsklearn.utils._openmp_helpers.x",
    "from jsonrpcserver.sentinels import NOID",  # private by jsonrpcserver's word
    "from jsonrpcserver.dispatcher import call",
    "import sys\nsys.modules.get('joblib.externals.loky.reusable_executor')",
    "import sys\nsys.modules.get('sklearn.ensemble._hist_gradient_boosting.gradient_boosting')",
    "from dowhy.gcm.auto import _LIST_OF_POTENTIAL_REGRESSORS_GOOD",
    "def f(model):\n    return model._baseline_prediction",
])
def test_the_scan_finds_each_kind_of_private_read(source: str) -> None:
    assert list(private_names(ast.parse(source)))


@pytest.mark.parametrize("source", [
    "from dowhy.gcm.auto import select_model",
    "import sklearn\nsklearn.__version__",
    "import os\nos._exit(0)",  # the standard library is not an upstream of the fast paths
    "from dowhy.gcm.causal_models import PARENTS_DURING_FIT",
    "from jsonrpcserver import Success, dispatch",
    "def f(queue):\n    return queue._heap",  # a name the worker defines itself
])
def test_the_scan_passes_public_names(source: str) -> None:
    assert not list(private_names(ast.parse(source)))


def test_the_fast_paths_do_read_private_names() -> None:
    """The scan is not blind: inside fast/ it finds what the gate is there for."""
    found = [what for path in sorted(FAST.glob("*.py"))
             for _, what in private_names(ast.parse(path.read_text()))]
    assert any("_LIST_OF_POTENTIAL_REGRESSORS" in what for what in found)
    assert any("_hist_gradient_boosting" in what for what in found)
    assert any(what.endswith("._predictors") for what in found)
