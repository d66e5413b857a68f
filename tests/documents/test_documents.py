"""The documents' own rules: a README that fits on a page, every block run or data, reasons.

sybil (plugin.py) runs the blocks it has a parser for and ignores the rest: these tests make
sure no block escapes that way (a ```sh block would be silently ignored), that a skipped
block says why, and that the error table is written once, in docs/PROTOCOL.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from documents.plugin import DOCUMENTS, ROOT, RUN_LANGUAGES
from sybil import Document
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer

#: Languages of blocks that are data, shown and never run (diagrams, file contents).
DATA_LANGUAGES = ("text", "json")
README_MAX_LINES = 150
#: A skip names its reason: `<!-- skip: next "why" -->`.
SKIP_WITH_REASON = re.compile(r'next "[^"]+"')


def documents() -> list[Path]:
    found = {path for pattern in DOCUMENTS for path in ROOT.glob(pattern)}
    return sorted(found)


def document(path: Path) -> Document:
    return Document(path.read_text(encoding="utf-8"), str(path))


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


def test_the_documents_are_found() -> None:
    names = set(ids(documents()))
    assert {"README.md", "CONTRIBUTING.md", "docs/PROTOCOL.md", "docs/INSTALL.md"} <= names


def test_the_readme_fits_on_a_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail to docs/"


@pytest.mark.parametrize("path", documents(), ids=ids(documents()))
def test_every_block_runs_or_is_data(path: Path) -> None:
    languages = [region.lexemes["language"]
                 for region in FencedCodeBlockLexer(language=".*")(document(path))]
    strays = [language for language in languages
              if language not in RUN_LANGUAGES + DATA_LANGUAGES]
    assert not strays, (f"{path.name}: blocks in {strays}: write code as python or console "
                        f"(run by the docs env), anything else as {DATA_LANGUAGES}")


@pytest.mark.parametrize("path", documents(), ids=ids(documents()))
def test_every_skip_gives_its_reason(path: Path) -> None:
    skips = [region.lexemes["arguments"]
             for region in DirectiveInHTMLCommentLexer("skip", arguments=".+?")(document(path))]
    bare = [arguments for arguments in skips if not SKIP_WITH_REASON.fullmatch(arguments)]
    assert not bare, f'{path.name}: write each skip as <!-- skip: next "why" -->, not {bare}'


def test_the_error_table_lives_in_protocol_md_only() -> None:
    tables = [name for path, name in zip(documents(), ids(documents()))
              if re.search(r"^\| -32\d{3} \|", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert tables == ["docs/PROTOCOL.md"]
