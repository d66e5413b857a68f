"""The worker's lock: worker-requirements.txt, shipped inside scm_client as package data.

One file is the source of truth: `make venvs`, tox and `scm setup` all install it, and it
travels in the wheel and sdist, so an installed client knows the stack of the worker it
needs without its checkout. `make lock` generates it with uv from worker-requirements.in
(the direct requirements): every package pinned with the sha256 of each of its
artifacts, so installers run with ``--require-hashes`` install exactly those files, and
with the build options it carries (wheels only, where the package has wheels).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PINS_FILE: Final = "worker-requirements.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})\b")


@dataclass(frozen=True)
class Locked:
    """One package of the lock: its exact version and the hashes its artifacts may have."""

    version: str
    hashes: tuple[str, ...]


def pins_path() -> Path:
    """Where the lock is: beside this module, in a checkout and in an installed wheel."""
    return Path(__file__).with_name(PINS_FILE)


def pins_text() -> str:
    return pins_path().read_text(encoding="utf-8")


def pins_digest() -> str:
    """sha256 of the lock: part of every provisioned environment's key and manifest."""
    return hashlib.sha256(pins_text().encode("utf-8")).hexdigest()


def entries(text: str) -> list[str]:
    """The lock's logical lines: backslash continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", text)
    lines = (line.split(" #")[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def parse_lock(text: str) -> dict[str, Locked]:
    """``name==version --hash=…`` entries as {name: Locked}; options and includes skipped."""
    locked = {}
    for line in entries(text):
        match = _PIN.match(line)
        if match:
            locked[match.group(1)] = Locked(match.group(2), tuple(_HASH.findall(line)))
    return locked


def parse_pins(text: str) -> dict[str, str]:
    """{name: version} of every pinned package."""
    return {name: entry.version for name, entry in parse_lock(text).items()}


def pins() -> dict[str, str]:
    return parse_pins(pins_text())

