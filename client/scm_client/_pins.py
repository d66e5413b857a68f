"""The worker's exact pins: worker-requirements.txt, shipped inside scm_client as package data.

One file is the source of truth: `make venvs`, tox and `scm setup` all read it, and it
travels in the wheel and sdist, so an installed client knows the stack of the worker it
needs without its checkout.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

PINS_FILE: Final = "worker-requirements.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins_path() -> Path:
    """Where the pins file is: beside this module, in a checkout and in an installed wheel."""
    return Path(__file__).with_name(PINS_FILE)


def pins_text() -> str:
    return pins_path().read_text(encoding="utf-8")


def pins_digest() -> str:
    """sha256 of the pins file: part of every provisioned environment's key."""
    return hashlib.sha256(pins_text().encode("utf-8")).hexdigest()


def parse_pins(text: str) -> dict[str, str]:
    """``name==version`` lines as {name: version}; comments and blank lines skipped."""
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def pins() -> dict[str, str]:
    return parse_pins(pins_text())
