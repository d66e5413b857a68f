"""The live progress line on stderr: one renderer for every `scm` command, `scm batch` included.

On a terminal the line is rewritten in place (``\\r``, text, erase to the end of the line)
on every update and twice a second in between, so the elapsed time moves during a long
node; it is erased when the call ends, before the command prints its result. Elsewhere
nothing is shown, unless ``-v`` asks for plain lines (at most one a second). ``--quiet``
silences it everywhere. It never touches stdout, so ``--json`` stays machine-readable.
"""

from __future__ import annotations

import argparse
import enum
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

BAR_WIDTH = 30
#: a terminal redraws the line this often without news, to move the elapsed time
TICK_S = 0.5
#: plain (not a terminal, -v) lines come at most this often
PLAIN_EVERY_S = 1.0
ERASE = "\r\x1b[K"
WAITING = "waiting for the worker"

#: the worker's progress stages (docs/PROTOCOL.md), as a user reads them
STAGES = {
    "checking": "request checked",
    "loading": "loading DoWhy",
    "fitting": "fitting",
    "scoring": "scoring",
    "storing": "storing the model",
    "sampling": "sampling",
    "computing": "computing the answer",
    "diagnostics": "running diagnostics",
    "rendering": "rendering the report",
    "batch": "fitting the batch",
}


class Mode(enum.Enum):
    OFF = "off"
    LIVE = "live"  # a terminal: one line, rewritten in place
    PLAIN = "plain"  # not a terminal, -v: plain lines, at most one a second


def mode_for(args: argparse.Namespace, stream: TextIO) -> Mode:
    """--quiet → off; a terminal → live; -v → plain lines; else off."""
    if getattr(args, "quiet", False):
        return Mode.OFF
    if stream.isatty():
        return Mode.LIVE
    return Mode.PLAIN if getattr(args, "verbose", False) else Mode.OFF


def line_text(done: int, total: int, elapsed: float, label: str = "",
              eta_elapsed: float | None = None, rate: bool = False, eta: bool = True) -> str:
    """``[#####.....] 12/40 fitting X7 · 0.50/s · 3s elapsed · ETA 7s``.

    ``eta_elapsed`` is the time the ``done`` items took (default ``elapsed``): a stage's
    own time, so that the checking and warm-up before it do not skew the ETA.
    """
    filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
    spent = elapsed if eta_elapsed is None else eta_elapsed
    per_s = done / spent if spent > 0 else 0.0
    counted = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
    parts = [counted + (f" {label}" if label else "")]
    if rate:
        parts.append(f"{per_s:.2f}/s")
    parts.append(f"{elapsed:.0f}s elapsed")
    if eta:
        parts.append(f"ETA {(total - done) / per_s:.0f}s" if per_s > 0 else "ETA ?")
    return " · ".join(parts)


class Line:
    """One line on ``stream`` in a Mode: drawn, erased or ended; safe to call from any thread."""

    def __init__(self, stream: TextIO, mode: Mode, prefix: str = "scm") -> None:
        self.stream = stream
        self.mode = mode
        self.prefix = prefix
        self._lock = threading.Lock()
        self._shown = False
        self._last_plain = float("-inf")

    def draw(self, text: str, force: bool = False) -> None:
        """Show ``text``; plain lines are dropped if the last one is under a second old."""
        with self._lock:
            if self.mode is Mode.LIVE:
                self._write(f"\r{text}\x1b[K")
                self._shown = True
            elif self.mode is Mode.PLAIN:
                now = time.monotonic()
                if force or now - self._last_plain >= PLAIN_EVERY_S:
                    self._last_plain = now
                    self._write(f"{self.prefix}: {text}\n")

    def erase(self) -> None:
        with self._lock:
            if self._shown:
                self._write(ERASE)
                self._shown = False

    def end(self) -> None:
        """Leave the last text on screen and move to a new line."""
        with self._lock:
            if self._shown:
                self._write("\n")
                self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed under us: progress is never worth a crash
            pass


class CallProgress:
    """One worker call's progress (its ``progress`` notifications) drawn on a Line.

    ``during(waiting)`` frames a call: the line shows ``waiting`` ("waiting for the
    worker" by default) until the first notification, then ``[bar] done/total stage node
    · elapsed · ETA``, and is erased when the call returns. ``update`` is the call's
    ``on_progress``.
    """

    def __init__(self, line: Line) -> None:
        self.line = line
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stage_started = self._started
        self._params: dict[str, Any] | None = None
        self._waiting = WAITING
        self._stop = threading.Event()

    @contextmanager
    def during(self, waiting: str = "") -> Iterator[None]:
        if self.line.mode is Mode.OFF:
            yield
            return
        with self._lock:
            self._started = self._stage_started = time.monotonic()
            self._params = None
            self._waiting = waiting or WAITING
        self._stop.clear()
        ticker = None
        if self.line.mode is Mode.LIVE:
            ticker = threading.Thread(target=self._tick, name="scm-progress", daemon=True)
            ticker.start()
        try:
            yield
        finally:
            self._stop.set()
            if ticker is not None:
                ticker.join(timeout=2)
            self.line.erase()

    def update(self, params: dict[str, Any]) -> None:
        """A ``progress`` notification of the current call."""
        with self._lock:
            previous = self._params
            if previous is None or previous.get("stage") != params.get("stage"):
                self._stage_started = time.monotonic()
            self._params = params
        self.line.draw(self.text(), force=self._is_last(params))

    def text(self) -> str:
        with self._lock:
            params, started, stage_started = self._params, self._started, self._stage_started
            waiting = self._waiting
        now = time.monotonic()
        if params is None:
            return f"{waiting} · {now - started:.0f}s elapsed"
        stage = str(params.get("stage", ""))
        label = STAGES.get(stage, stage)
        if params.get("node") is not None:
            label += f" {params['node']}"
        done, total = _count(params.get("done")), _count(params.get("total"))
        return line_text(done, total, now - started, label, eta_elapsed=now - stage_started,
                         eta=total > 1)

    @staticmethod
    def _is_last(params: dict[str, Any]) -> bool:
        """The final count of a counted stage is always shown, even in plain mode."""
        total = _count(params.get("total"))
        return total > 1 and _count(params.get("done")) == total

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            self.line.draw(self.text())


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def call_progress(args: argparse.Namespace, stream: TextIO | None = None) -> CallProgress:
    """The progress of a command's worker calls, on stderr, in the mode its flags ask for."""
    out = sys.stderr if stream is None else stream
    return CallProgress(Line(out, mode_for(args, out)))
