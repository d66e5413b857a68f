"""import-linter's ``forbidden`` contract, for the private modules of external packages.

The built-in ``forbidden`` contract refuses a subpackage of an external package
("subpackages of external packages are not valid"): grimp keeps each external package as
one squashed module, ``sklearn``, whatever part of it a module imports. But it keeps the
line of every import, so this contract reads those lines: a module in ``source_modules``
(a package includes its descendants) that imports a module in ``forbidden_modules``, or
one below it, breaks it, unless ``allowed_modules`` holds the importer or
``ignore_imports`` lists the import (``importer -> forbidden module``, as written in
``forbidden_modules``). Only direct imports count: the public ``sklearn.ensemble`` itself
imports its private ``_hist_gradient_boosting``, and that is scikit-learn's business.

Registered in pyproject.toml's ``[tool.importlinter]`` as ``contract_types``; import-linter
puts the working directory on ``sys.path``, which makes this ``scripts.importlinter_private``.
"""

from __future__ import annotations

import re

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

#: ``from a.b import c`` or ``import a.b`` (or ``import a.b as x, ...``): the module path
_IMPORTED = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class ForbiddenPrivateContract(Contract):
    """No module of ``source_modules`` outside ``allowed_modules`` imports a forbidden module
    of an external package directly (see the module's docstring)."""

    type_name = "forbidden_external_modules"

    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    ignore_imports = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        ignored = {tuple(p.strip() for p in entry.split("->")) for entry in self.ignore_imports}
        violations, used = [], set()
        for importer in sorted(self._importers(graph)):
            for imported, line, text in self._external_imports(graph, importer):
                for forbidden in self.forbidden_modules:
                    if not _within(imported, forbidden):
                        continue
                    if (importer, forbidden) in ignored:
                        used.add((importer, forbidden))
                        continue
                    violations.append(f"{importer} (l. {line}) imports {imported}: {text}")
        unused = [f"unmatched ignore_imports entry: {a} -> {b}" for a, b in ignored - used]
        return ContractCheck(kept=not violations and not unused,
                             metadata={"violations": violations + unused},
                             ignored_import_count=len(used))

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation}", bold=False)
        output.new_line()

    def _importers(self, graph: ImportGraph) -> set[str]:
        return {
            module for module in graph.modules
            if any(_within(module, source) for source in self.source_modules)
            and not any(_within(module, allowed) for allowed in self.allowed_modules)
        }

    def _external_imports(self, graph: ImportGraph, importer: str) -> list[tuple[str, int, str]]:
        """(module path, line, line text) of each import of an external package."""
        found = []
        for imported in graph.find_modules_directly_imported_by(importer):
            if not graph.is_module_squashed(imported):
                continue
            for detail in graph.get_import_details(importer=importer, imported=imported):
                match = _IMPORTED.match(detail["line_contents"])
                if match:
                    path = match.group(1) or match.group(2)
                    found.append((path, detail["line_number"], detail["line_contents"].strip()))
        return found
