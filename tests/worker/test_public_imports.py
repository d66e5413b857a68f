"""jsonrpcserver is used through its public names only, in every module of the project.

A name is public when ``jsonrpcserver.__all__`` exports it. Its submodules
(``jsonrpcserver.dispatcher``, ``.response``, ``.sentinels`` …) are internals that a
release may move; the worker once reached into them to skip the library's checks, and
its public ``dispatch_to_serializable`` takes the deserializer and validator instead.
Read with ``ast``, not by importing: every ``from jsonrpcserver… import``, every
``import jsonrpcserver…`` and every attribute read on the imported module is checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import jsonrpcserver

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("worker", "client", "tests", "benchmarks", "scripts")
UPSTREAM = "jsonrpcserver"
PUBLIC = frozenset(jsonrpcserver.__all__)


def _public(name: str) -> bool:
    """Exported, or a module attribute every module has (``__all__``, ``__version__``)."""
    return name in PUBLIC or name.startswith("__") and name.endswith("__")


def private_uses(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each use of a jsonrpcserver name that ``__all__`` does not export."""
    tree = ast.parse(source)
    aliases: set[str] = set()  # local names bound to the jsonrpcserver module itself
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == UPSTREAM:
                for alias in node.names:
                    if not _public(alias.name):
                        yield node.lineno, f"from {UPSTREAM} import {alias.name}"
            elif node.module.startswith(UPSTREAM + "."):
                yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(UPSTREAM + "."):
                    yield node.lineno, f"import {alias.name}"
                elif alias.name == UPSTREAM:
                    aliases.add(alias.asname or UPSTREAM)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and not _public(node.attr)):
            yield node.lineno, f"{node.value.id}.{node.attr}"


def project_modules() -> Iterator[Path]:
    for top in SCANNED:
        yield from (path for path in sorted((ROOT / top).rglob("*.py"))
                    if not any(part.startswith(".") for part in path.relative_to(ROOT).parts))


def test_no_module_uses_a_jsonrpcserver_name_it_does_not_export() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in project_modules()
        for line, what in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert not found, "jsonrpcserver names outside its __all__:\n" + "\n".join(found)


def test_the_check_sees_every_way_of_reaching_a_private_name() -> None:
    """The scan above can only pass honestly if it catches each form it looks for."""
    source = "\n".join([
        "from jsonrpcserver import Success, Result",             # public: not reported
        "from jsonrpcserver.dispatcher import call",             # 2
        "from jsonrpcserver import sentinels",                   # 3
        "import jsonrpcserver.response",                         # 4
        "import jsonrpcserver as rpc",
        "rpc.dispatch_to_serializable, rpc.__all__, rpc.main",   # 6: main only
        "from .jsonrpcserver import anything",                   # relative: ours, not upstream
    ])
    assert sorted(line for line, _ in private_uses(source)) == [2, 3, 4, 6]
    assert PUBLIC >= {"dispatch_to_serializable", "Result", "Success", "JsonRpcError"}
