"""Starting a Python with nothing from the caller's directory: its flags and its directory.

Every interpreter the client starts — the worker, the daemon, and the probes of `scm
setup` and `scm doctor` — runs as ``python -I ...`` from ``/``, so that running ``scm``
inside a cloned repository is as safe as ``git status`` there. Run as ``python -m
scm_worker`` or ``python -c ...`` from the caller's directory, that directory would come
first on ``sys.path``: a planted ``scm_worker/`` would become the worker (with the daemon,
every later client's), a planted ``json.py`` would run in a probe.

``-I`` rather than ``-P`` plus a cleaned environment: ``-I`` also ignores every
``PYTHON*`` variable (``PYTHONPATH``, ``PYTHONHOME``, ``PYTHONSTARTUP``...) and the user's
site-packages, so the interpreter runs its own environment's code and nothing a caller's
shell brings. A shared daemon is then what its environment says it is, whichever client
started it. The worker needs none of what ``-I`` drops: its stdio is binary, its settings
are flags and ``SCM_*``/``XDG_*`` variables, its packages are its environment's
(an editable install's ``.pth`` files are read). The price: a worker stack reachable
only through ``PYTHONPATH`` or a ``pip install --user`` is not seen; build an environment
(`scm setup`) or point ``--python`` at one.

``/`` as the directory: it exists everywhere, holds nothing a user can plant, and a
daemon started there keeps no caller's directory busy. Paths the client hands over are
made absolute first, against the caller's directory, where the caller meant them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

#: the interpreter flags of every Python the client starts
FLAGS: Final = ("-I",)
#: the working directory of every process the client starts, installers aside
CWD: Final = "/"
#: the worker's flags whose value is a path (``--flag PATH`` or ``--flag=PATH``)
PATH_FLAGS: Final = frozenset({"--store", "--log-file", "--listen"})


def python_argv(python: str, *args: str) -> list[str]:
    """``[python, -I, *args]``, with a relative ``python`` made absolute (a bare name is
    left to PATH): the process starts in ``CWD``, where a relative path means nothing."""
    return [absolute_program(python), *FLAGS, *args]


def absolute_program(program: str) -> str:
    """``program`` as the caller's directory resolves it: absolute if it names a path."""
    return os.path.abspath(program) if os.sep in program else program


def absolute_args(args: Sequence[str]) -> tuple[str, ...]:
    """The worker's flags with every path value (``PATH_FLAGS``) made absolute now."""
    out: list[str] = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        if out and out[-1] in PATH_FLAGS and not arg.startswith("-"):
            out.append(os.path.abspath(arg))
        elif eq and flag in PATH_FLAGS:
            out.append(f"{flag}={os.path.abspath(value)}")
        else:
            out.append(arg)
    return tuple(out)
