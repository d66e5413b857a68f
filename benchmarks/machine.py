"""What the machine was doing and what it is, for the record each benchmark writes."""

from __future__ import annotations

import datetime as dt
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import provenance


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass(frozen=True)
class Run:
    """A generated document's run: the commit and load it began with, and its clock.

    Begun *before* measuring, so the stamp names the code measured; the header then
    says when, how long, by which command, and how loaded the machine was around it.
    """

    measured: provenance.Measured
    load_before: str
    started: float

    @classmethod
    def begin(cls) -> Run:
        return cls(provenance.measured_at(), load_average(), time.perf_counter())

    def header(self, title: str, command: str) -> list[str]:
        return [
            f"# {title}",
            "",
            provenance.stamp(self.measured),
            "",
            (f"- measured on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in "
             f"{time.perf_counter() - self.started:.0f} s; command: `{command}`"),
            (f"- machine: {cpu_model()}; load average {self.load_before} before, "
            f"{load_average()} after"),
        ]


def publish(out: Path, lines: list[str]) -> None:
    """Write the document and show it."""
    out.write_text("\n".join(lines))
    print("\n".join(lines))
