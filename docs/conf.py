"""The documentation site: Sphinx, MyST Markdown and furo, built strictly by `make lint`.

The source directory is the repository itself (`sphinx-build -c docs . OUT`), so every
document stays where GitHub shows it and its links are the same paths on both: README.md
is the home page, not a copy of it. The site's navigation is declared here, in NAV, and
appended to the home page as a hidden toctree when Sphinx reads it, so README.md carries
no Sphinx-only markup. CONTRIBUTING.md says why Sphinx rather than MkDocs.
"""

from __future__ import annotations

from typing import Any

project = "scm-worker"
root_doc = "README"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
# Only these documents make the site; a link to any other file of the checkout is an error.
include_patterns = ["README.md", "CONTRIBUTING.md", "docs/*.md", "benchmarks/*.md"]
exclude_patterns = [".*", "**/.*", "build", "**/node_modules"]

#: The site's navigation, in order: (caption, documents without their suffix).
NAV = [
    ("Using scm-worker", ["docs/INSTALL", "docs/PYTHON", "docs/CLI", "docs/CLUSTER"]),
    ("Reference", ["docs/PROTOCOL", "docs/RELIABILITY", "docs/ARCHITECTURE"]),
    ("Developing", ["CONTRIBUTING"]),
    ("Benchmarks", ["benchmarks/*"]),
]

# GitHub's anchors for headings (`docs/PROTOCOL.md#binary-columns`), checked like links.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]
nitpicky = True

html_theme = "furo"
html_title = "scm-worker"
html_show_sourcelink = False
# The pages are written for GitHub too: keep their own titles, no "— scm-worker" suffix.
html_copy_source = False


def _toctree(caption: str, documents: list[str]) -> str:
    entries = "\n".join(f"/{document}" for document in documents)
    return f"\n\n```{{toctree}}\n:hidden:\n:glob:\n:caption: {caption}\n\n{entries}\n```\n"


def _add_navigation(app: Any, docname: str, source: list[str]) -> None:
    """Append NAV to the home page as hidden toctrees: furo's sidebar, without README markup."""
    if docname == root_doc:
        source[0] += "".join(_toctree(caption, documents) for caption, documents in NAV)


def setup(app: Any) -> None:
    app.connect("source-read", _add_navigation)
