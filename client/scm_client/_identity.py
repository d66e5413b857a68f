"""Which worker environment an interpreter is: what names its daemon, asked before connecting.

The worker computes its identity itself (``scm_worker.identity``: the environment's
``sys.prefix``, the scm-worker version, a digest of the ``scm_worker`` source it would
import, and a key of the three), so the rule lives in one place. The probe imports
nothing of DoWhy and starts as every interpreter the client starts does (``_isolated``:
``-I`` from ``/``), so it finds the package exactly as the daemon will.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Final

from ._isolated import CWD, python_argv
from .errors import WorkerStartError

PROBE_TIMEOUT_S: Final = 60.0
#: what a key may be before it becomes part of a file name
KEY_PATTERN: Final = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Identity:
    """A worker environment as its interpreter describes itself (``status`` has the same)."""

    python: str
    prefix: str
    worker_version: str
    worker_path: str
    source_digest: str
    environment_key: str


def identify(python: str) -> Identity:
    """Ask ``python`` who it is; WorkerStartError (with its stderr) when it cannot say."""
    try:
        done = subprocess.run(python_argv(python, "-m", "scm_worker.identity"), cwd=CWD,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkerStartError(f"could not ask {python} which worker it runs: {exc}") from exc
    if done.returncode != 0:
        raise WorkerStartError(f"{python} cannot say which worker it runs (exit "
                               f"{done.returncode}): is it a worker environment?",
                               done.stderr[-2000:])
    return _parse(python, done.stdout)


def _parse(python: str, text: str) -> Identity:
    try:
        fields = json.loads(text)
        identity = Identity(**{name: str(fields[name]) for name in Identity.__dataclass_fields__})
    except (ValueError, TypeError, KeyError) as exc:
        raise WorkerStartError(f"{python} answered the identity probe with {text[:200]!r}") \
            from exc
    if not KEY_PATTERN.fullmatch(identity.environment_key):
        raise WorkerStartError(f"{python} gave an environment key that is no key: "
                               f"{identity.environment_key[:40]!r}")
    return identity
