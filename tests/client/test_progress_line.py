"""The `scm` progress renderer (scm_client.cli.progress): pure text and the three modes."""

from __future__ import annotations

import argparse
import io

from scm_client.cli.progress import ERASE, CallProgress, Line, Mode, line_text, mode_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def flags(**values: bool) -> argparse.Namespace:
    return argparse.Namespace(**{"quiet": False, "verbose": False, **values})


def test_mode_is_live_on_a_terminal_plain_with_verbose_elsewhere_and_off_when_quiet() -> None:
    assert mode_for(flags(), Terminal()) is Mode.LIVE
    assert mode_for(flags(), io.StringIO()) is Mode.OFF
    assert mode_for(flags(verbose=True), io.StringIO()) is Mode.PLAIN
    assert mode_for(flags(quiet=True), Terminal()) is Mode.OFF
    assert mode_for(flags(quiet=True, verbose=True), io.StringIO()) is Mode.OFF


def test_line_text_shows_the_bar_counts_elapsed_and_an_eta_from_the_stage_rate() -> None:
    text = line_text(10, 40, 12.0, "fitting N07", eta_elapsed=5.0)
    assert text.startswith("[" + "#" * 7 + "." * 23 + "] 10/40 fitting N07")
    assert "12s elapsed" in text and text.endswith("ETA 15s")
    assert line_text(0, 5, 3.0).endswith("ETA ?")
    assert "2.00/s" in line_text(4, 8, 2.0, rate=True)


def test_a_live_line_is_rewritten_in_place_and_erased_after_the_call() -> None:
    stream = Terminal()
    progress = CallProgress(Line(stream, Mode.LIVE))
    with progress.during():
        progress.update({"request_id": 1, "stage": "fitting", "done": 1, "total": 2, "node": "Y"})
        progress.update({"request_id": 1, "stage": "fitting", "done": 2, "total": 2, "node": "Z"})
    out = stream.getvalue()
    assert "\n" not in out and out.endswith(ERASE)
    assert "1/2 fitting Y" in out and "2/2 fitting Z" in out


def test_plain_lines_come_at_most_once_a_second_but_the_final_count_always_shows() -> None:
    stream = io.StringIO()
    progress = CallProgress(Line(stream, Mode.PLAIN))
    with progress.during():
        for done in range(1, 6):
            progress.update({"request_id": 1, "stage": "fitting", "done": done, "total": 5})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("scm: [") for line in lines)
    assert "5/5 fitting" in lines[-1]


def test_off_writes_nothing() -> None:
    stream = Terminal()
    progress = CallProgress(Line(stream, Mode.OFF))
    with progress.during():
        progress.update({"request_id": 1, "stage": "fitting", "done": 1, "total": 1})
    assert stream.getvalue() == ""
