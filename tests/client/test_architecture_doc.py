"""docs/ARCHITECTURE.md names every module of both packages, so the map cannot drift.

A module added without its line in the map fails here; a module removed leaves a name
that ``test_every_module_the_map_names_exists`` finds.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
PACKAGES = {"worker/scm_worker": ("report",), "client/scm_client": ("cli",)}


def modules() -> list[Path]:
    """Each package's modules, subpackages included; report/ and cli/ count as one entry."""
    found = []
    for package, whole in PACKAGES.items():
        base = ROOT / package
        for path in sorted(base.rglob("*.py")):
            inside = path.relative_to(base).parts
            if path.name == "__init__.py" or any(part in whole for part in inside[:-1]):
                continue
            found.append(path)
    return found


def test_every_module_is_on_the_map() -> None:
    missing = [str(p.relative_to(ROOT)) for p in modules()
               if not re.search(rf"\b{re.escape(p.stem)}(\.py)?\b", MAP)]
    assert not missing, f"add these to docs/ARCHITECTURE.md: {missing}"


def test_every_module_the_map_names_exists() -> None:
    stems = {p.stem for p in modules()}
    named = set(re.findall(r"`(\w+)\.py`", MAP))
    assert named <= stems, f"docs/ARCHITECTURE.md names modules that do not exist: {named - stems}"
