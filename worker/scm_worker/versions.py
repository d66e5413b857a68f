"""Version strings read from package metadata, so asking never imports DoWhy."""

from __future__ import annotations

import functools
import sys
from importlib import metadata


@functools.cache
def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def dowhy_version() -> str:
    return package_version("dowhy")


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
