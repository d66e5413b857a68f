"""The global flags (--yes, --python, --no-daemon, -v, -q) before or after every command.

docs/INSTALL.md shows `scm setup` taking `--yes` after the command; a user types flags
where they think of them, so each command's parser must take them as well as the main one
(``add_global_options``).
"""

from __future__ import annotations

import argparse

import pytest
from scm_client.cli import COMMANDS, build_parser

#: a command line for every subcommand that its own positionals complete
COMMAND_LINES = [
    ["setup"], ["doctor"], ["fit", "r.json"], ["sample", "r.json"], ["demo"],
    ["batch", "dir"], ["models", "list"], ["effect", "r.json", "--target", "Y", "--do", "X=1"],
    ["strength", "r.json", "--target", "Y"], ["influence", "r.json", "--target", "Y"],
    ["anomaly", "r.json", "--target", "Y", "--rows", "a.json"],
    ["change", "r.json", "--target", "Y", "--old", "o.json", "--new", "n.json"],
    ["report", "r.json", "-o", "r.html"], ["daemon", "status"], ["daemon", "stop"],
    ["evaluate", "r.json", "--falsify"], ["falsify", "r.json", "--max-permutations", "6"],
]
FLAGS = {"--yes": ("yes", True), "--no-daemon": ("no_daemon", True),
         "-v": ("verbose", True), "-q": ("quiet", True), "--python": ("python", "/p/python")}


def flag_argv(flag: str) -> list[str]:
    return [flag, "/p/python"] if flag == "--python" else [flag]


@pytest.mark.parametrize("line", COMMAND_LINES, ids=lambda line: " ".join(line[:2]))
@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_a_global_flag_works_before_and_after_the_command(line: list[str], flag: str) -> None:
    dest, value = FLAGS[flag]
    before = vars(build_parser().parse_args([*flag_argv(flag), *line]))
    after = vars(build_parser().parse_args([*line, *flag_argv(flag)]))
    assert before[dest] == after[dest] == value


def test_every_command_is_in_the_table() -> None:
    """A new command gets its row here, so the flags are checked on it too."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    for module in COMMANDS:
        module.register(subparsers)
    assert set(subparsers.choices) == {line[0] for line in COMMAND_LINES}
