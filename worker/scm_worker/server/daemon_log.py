"""A detached daemon's output: one bounded, rotating log file beside its socket.

A daemon has no terminal and no client reading its stderr, yet DoWhy, warnings, C code
and joblib's children still write to fds 1 and 2. Both become one pipe whose lines a
thread passes to ``logging`` (logger ``scm_worker.output``), so every byte the process
and its children print ends up in the same rotating file, which never grows past
``MAX_BYTES`` × (``BACKUPS`` + 1).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path
from typing import Final

MAX_BYTES: Final = 1024 * 1024
BACKUPS: Final = 3
FORMAT: Final = "%(asctime)s scm-worker[%(process)d] %(levelname)s %(name)s: %(message)s"


def log_to_file(path: Path) -> None:
    """Send logging to ``path`` (rotating) and fds 1 and 2 through logging as well."""
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):  # a stderr handler would feed the pipe it is drained into
        root.removeHandler(old)
    root.addHandler(handler)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    threading.Thread(target=_drain, args=(read_end,), name="scm-output", daemon=True).start()
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    sys.stdout = sys.stderr


def _drain(fd: int) -> None:
    output = logging.getLogger("scm_worker.output")
    with os.fdopen(fd, "rb") as pipe:
        for raw in pipe:
            output.info("%s", raw.decode("utf-8", "replace").rstrip("\n"))
