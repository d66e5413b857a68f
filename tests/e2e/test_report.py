"""`report`: the fitted model as a picture, end to end, looked at by a real browser.

The Python 3.13 client drives the real worker (SCM_WORKER_PYTHON); the documents are
opened in a real headless Chromium: screenshots must not be blank and the node labels
must be in the DOM. Chromium is required — `make test` finds one or installs Debian's
`chromium` (scripts/ensure-chromium.sh) and passes its path as SCM_CHROMIUM — so without
it these tests fail rather than skip. The PNG screenshots
are decoded with zlib only (this env has nothing but the standard library).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from scm_client import Worker
from scm_client.cli import common
from scm_client.cli import report as cli_report
from scm_client.errors import InvalidParams, ModelNotFound
from scm_client.results import FitResult
from support.worker_env import ONE_THREAD

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED = 42
DO_X = [{"type": "hard", "node": "X", "value": 5}]

#: The graph's box fills (report/figures.py's COLOURS): a rendered graph shows them.
PASS_FILL = (0xDC, 0xEF, 0xDC)
FAIL_FILL = (0xF9, 0xD6, 0xD5)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(worker_python: str) -> Iterator[Worker]:
    """One worker for the module: the fits below are reused by several tests."""
    with Worker(worker_python, worker_args=("--no-warmup", "--no-store", *ONE_THREAD)) as started:
        yield started


def fixture_request(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def fit(worker: Worker, request: dict[str, Any], **config: Any) -> FitResult:
    params = {"graph": request["graph"], "traces": request["traces"],
              "config": {**(request.get("config") or {}), "seed": SEED, **config}}
    return FitResult.from_wire(worker.call("fit", params))


@pytest.fixture(scope="module")
def linear_chain(worker: Worker) -> FitResult:
    return fit(worker, fixture_request("linear_chain"))


@pytest.fixture(scope="module")
def noisy(worker: Worker) -> FitResult:
    """noisy_data fails the R² rule; with validate_r2 false it is returned, node Y failing."""
    return fit(worker, fixture_request("noisy_data"), validate_r2=False)


@pytest.fixture(scope="module")
def categorical(worker: Worker) -> FitResult:
    """X → C ("red"/"blue", a classifier node) → Y ← X."""
    rng = random.Random(7)
    x = [rng.gauss(0, 1) for _ in range(400)]
    c = ["red" if value + rng.gauss(0, 0.3) > 0 else "blue" for value in x]
    y = [1.5 * a + (2.0 if b == "red" else -1.0) + rng.gauss(0, 0.3) for a, b in zip(x, c, strict=True)]
    request = {"graph": {"nodes": ["X", "C", "Y"], "edges": [["X", "C"], ["C", "Y"], ["X", "Y"]]},
               "traces": {"X": x, "C": c, "Y": y}}
    return fit(worker, request)


def scores(model: FitResult) -> dict[str, tuple[str, float]]:
    """Node → (label, score) as a report shows them: R² and accuracy, three decimals."""
    shown = {node: ("R²", score) for node, score in model.validation["r2_scores"].items()}
    shown.update({node: ("accuracy", score) for node, score in model.validation["accuracy"].items()})
    return shown


# -- HTML checks -------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Balanced(HTMLParser):
    """Every element that is opened is closed, in order; collects <text> contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.texts: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "text" and data.strip():
            self.texts.append(data.strip())


def parse_html(page: str) -> Balanced:
    parser = Balanced()
    parser.feed(page)
    parser.close()
    assert not parser.problems, parser.problems[:5]
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def inline_svgs(page: str) -> list[ET.Element]:
    """Each <svg> of the page, parsed as XML (so each is well-formed on its own)."""
    return [ET.fromstring(chunk) for chunk in re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)]


def svg_texts(root: ET.Element) -> list[str]:
    return [(e.text or "").strip() for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "text"]


def assert_self_contained(page: str) -> None:
    lowered = page.lower()
    for needle in ("http", "<script", "<link", " src=", "@import", "@font-face", "<iframe", "<object"):
        assert needle not in lowered, f"{needle!r} in the report"
    # url(#clip-id) and href="#marker" point inside the document; nothing else may
    assert not re.search(r"""url\(\s*['"]?(?!#)""", lowered), "a url() outside the document"
    assert not re.search(r"""href\s*=\s*['"](?!#)""", lowered), "a link outside the document"


# -- Chromium ----------------------------------------------------------------------------


def chromium() -> str:
    for candidate in (os.environ.get("SCM_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    pytest.fail("Chromium is required for the report tests and was not found (chromium on PATH, or "
                "SCM_CHROMIUM=/path/to/chromium). `make test` installs it (scripts/ensure-chromium.sh)",
                pytrace=False)


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="scm-chromium-") as profile:
        argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}"
    return done


def screenshot(page: Path, png: Path) -> Image:
    run_chromium(f"--screenshot={png}", "--window-size=1200,900", page.as_uri())
    assert png.exists(), f"chromium wrote no screenshot of {page}"
    return Image.read(png)


def dump_dom(page: Path) -> str:
    return run_chromium("--dump-dom", page.as_uri()).stdout


class Image:
    """An 8-bit RGB/RGBA PNG (what Chromium writes), decoded with zlib alone."""

    def __init__(self, width: int, height: int, channels: int, rows: list[bytes]) -> None:
        self.width, self.height, self.channels, self.rows = width, height, channels, rows

    @classmethod
    def read(cls, path: Path) -> Image:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat, header = 8, [], None
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
            pos += 12 + length
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                idat.append(body)
            elif kind == b"IEND":
                break
        assert header is not None, "PNG without IHDR"
        width, height, depth, colour, _, _, interlace = header
        assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
        channels = 3 if colour == 2 else 4
        return cls(width, height, channels, unfilter(zlib.decompress(b"".join(idat)), width * channels, channels))

    def pixels(self) -> Counter[bytes]:
        """Colour (RGB bytes) → number of pixels."""
        counts: Counter[bytes] = Counter()
        step = self.channels
        for row in self.rows:
            counts.update(row[i:i + 3] for i in range(0, len(row), step))
        return counts


def unfilter(raw: bytes, stride: int, bpp: int) -> list[bytes]:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    rows: list[bytes] = []
    previous = bytearray(stride)
    for start in range(0, len(raw), stride + 1):
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"bad PNG filter {kind}"
        rows.append(bytes(line))
        previous = line
    return rows


def assert_not_blank(image: Image) -> Counter[bytes]:
    pixels = image.pixels()
    total = image.width * image.height
    _, background = pixels.most_common(1)[0]
    assert len(pixels) >= 20, f"only {len(pixels)} distinct colours: blank?"
    assert total - background >= total // 200, f"only {total - background} of {total} pixels differ from the background"
    return pixels


def colour_count(pixels: Counter[bytes], rgb: tuple[int, int, int]) -> int:
    """Pixels within 3 of ``rgb`` in each channel."""
    return sum(n for colour, n in pixels.items() if all(abs(colour[i] - rgb[i]) <= 3 for i in range(3)))


def has_box(pixels: Counter[bytes], rgb: tuple[int, int, int]) -> bool:
    """A node box's interior (thousands of pixels), not just the legend's swatch (about 100)."""
    return colour_count(pixels, rgb) >= 1000


def test_the_blank_check_catches_a_blank_page(tmp_path: Path) -> None:
    """The screenshot checks below mean something: an empty page fails them."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    with pytest.raises(AssertionError, match="blank|pixels differ"):
        assert_not_blank(screenshot(page, tmp_path / "blank.png"))


# -- HTML --------------------------------------------------------------------------------


def test_html_report_parses_is_self_contained_and_names_every_node_and_score(
        worker: Worker, linear_chain: FitResult, tmp_path: Path) -> None:
    path = worker.report(linear_chain, tmp_path / "linear_chain.html")
    assert path == tmp_path / "linear_chain.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    parsed = parse_html(page)
    assert parsed.tags["svg"] == 1 and parsed.tags["table"] >= 2
    nodes = linear_chain.scm["graph"]["nodes"]
    graph_texts = svg_texts(inline_svgs(page)[0])
    for node in nodes:
        assert node in graph_texts, f"node {node} is not a label in the graph"
        assert f'<th scope="row">{node}</th>' in page, f"node {node} is not in the validation table"
    for node, (label, score) in scores(linear_chain).items():
        assert f"{label} {score:.3f}" in graph_texts, f"{node}'s {label} is not on its node"
        assert page.count(f"{label} {score:.3f}") >= 2, f"{node}'s {label} is not in the table"
    # linear edges carry their coefficient
    for node in nodes[1:]:
        (coefficient,) = linear_chain.coefficients(node).values()
        assert f"{coefficient:.3f}" in graph_texts
    assert "validation passed" in page


def test_html_report_renders_in_chromium_with_labels_in_the_dom(
        worker: Worker, linear_chain: FitResult, tmp_path: Path) -> None:
    path = worker.report(linear_chain, tmp_path / "report.html")
    pixels = assert_not_blank(screenshot(path, tmp_path / "report.png"))
    assert has_box(pixels, PASS_FILL), "no passing node box in the screenshot"
    dom = dump_dom(path)
    labels = re.findall(r"<text\b[^>]*>([^<]*)</text>", dom)
    for node in linear_chain.scm["graph"]["nodes"]:
        assert node in labels, f"no <text>{node}</text> in Chromium's DOM"


# -- SVG ---------------------------------------------------------------------------------


def test_svg_report_renders_in_chromium_with_node_labels(
        worker: Worker, linear_chain: FitResult, tmp_path: Path) -> None:
    path = worker.report(linear_chain, tmp_path / "linear_chain.svg")
    document = path.read_text(encoding="utf-8")
    assert "<!DOCTYPE" not in document and "<metadata" not in document and "xlink" not in document
    # The one http string is the SVG namespace, which a browser needs to render the file.
    assert document.count("http") == 1 and 'xmlns="http://www.w3.org/2000/svg"' in document
    root = ET.fromstring(document)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = svg_texts(root)
    for node, (label, score) in scores(linear_chain).items():
        assert node in texts and f"{label} {score:.3f}" in texts
    pixels = assert_not_blank(screenshot(path, tmp_path / "linear_chain.png"))
    assert has_box(pixels, PASS_FILL), "no passing node box in the screenshot"
    # The labels are text in the browser's DOM, both in the SVG document and inlined in HTML.
    labels = re.findall(r"<text\b[^>]*>([^<]*)</text>", dump_dom(path))
    page = tmp_path / "embed.html"
    page.write_text(f"<!DOCTYPE html><html><body>{document.split('?>', 1)[1]}</body></html>", encoding="utf-8")
    embedded = re.findall(r"<text\b[^>]*>([^<]*)</text>", dump_dom(page))
    for node in linear_chain.scm["graph"]["nodes"]:
        assert node in labels, f"no <text>{node}</text> in the SVG's DOM"
        assert node in embedded, f"no <text>{node}</text> in the DOM of a page embedding the SVG"


def test_the_format_can_be_given_and_overrides_the_suffix(worker: Worker, linear_chain: FitResult,
                                                          tmp_path: Path) -> None:
    path = worker.report(linear_chain.model_id, tmp_path / "picture.out", format="svg")
    assert path.read_text(encoding="utf-8").startswith("<?xml")
    with pytest.raises(ValueError, match="html or .svg"):
        worker.report(linear_chain, tmp_path / "report.pdf")


# -- models that are harder to draw ------------------------------------------------------


def test_a_categorical_node_shows_its_classifier_and_accuracy(
        worker: Worker, categorical: FitResult, tmp_path: Path) -> None:
    assert categorical.mechanism("C")["type"] == "classifier"
    samples = {"interventions": [{"type": "hard", "node": "X", "value": 1.5}], "query_nodes": ["C", "Y"],
               "seed": 3}
    path = worker.report(categorical, tmp_path / "categorical.html", samples=samples)
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    parse_html(page)
    graph, histograms = inline_svgs(page)
    graph_texts = svg_texts(graph)
    for node in ("X", "C", "Y"):
        assert node in graph_texts
    assert "classifier" in graph_texts
    assert f"accuracy {categorical.validation['accuracy']['C']:.3f}" in graph_texts
    assert f"R² {categorical.validation['r2_scores']['Y']:.3f}" in graph_texts
    hist_texts = svg_texts(histograms)
    assert {"C", "Y", "red", "blue"} <= set(hist_texts), hist_texts  # C's bars are labelled by category
    pixels = assert_not_blank(screenshot(path, tmp_path / "categorical.png"))
    assert has_box(pixels, PASS_FILL)
    svg = worker.report(categorical, tmp_path / "categorical.svg")
    assert_not_blank(screenshot(svg, tmp_path / "categorical-svg.png"))


def test_a_failed_node_is_marked_as_failing(worker: Worker, noisy: FitResult, tmp_path: Path) -> None:
    assert not noisy.passed and noisy.validation["failed_nodes"] == ["Y"]
    result = worker.call("report", {"model_id": noisy.model_id, "format": "html"})
    assert {n["name"]: n["status"] for n in result["nodes"]} == {"X": "root", "Y": "fail"}
    page = result["content"]
    assert_self_contained(page)
    parse_html(page)
    score = noisy.validation["r2_scores"]["Y"]
    assert f"R² {score:.3f} &lt; 0.7" in page  # on the node, below the threshold
    assert '<tr class="fail">' in page and "validation failed" in page
    path = worker.report(noisy, tmp_path / "noisy.svg")
    pixels = assert_not_blank(screenshot(path, tmp_path / "noisy.png"))
    assert has_box(pixels, FAIL_FILL), "the failing node's red box is not in the screenshot"
    assert not has_box(pixels, PASS_FILL), "a passing box in a model whose only scored node fails"


# -- samples -----------------------------------------------------------------------------


def test_samples_add_histograms_beside_observational_ones(worker: Worker, linear_chain: FitResult,
                                                          tmp_path: Path) -> None:
    samples = {"kind": "interventional", "interventions": DO_X, "query_nodes": ["Y", "Z"], "num_samples": 500,
               "seed": 11}
    result = worker.call("report", {"model_id": linear_chain.model_id, "format": "html", "samples": samples})
    meta = result["metadata"]
    assert meta["histograms"] == ["Y", "Z"]
    assert meta["samples"]["kind"] == "interventional" and meta["samples"]["seed"] == 11
    page = result["content"]
    assert_self_contained(page)
    parse_html(page)
    assert 'id="samples"' in page and "do(X = 5)" in page
    _, histograms = inline_svgs(page)
    texts = svg_texts(histograms)
    assert {"Y", "Z", "observational", "do(X = 5)"} <= set(texts), texts
    assert "X" not in texts  # only the queried nodes get a histogram
    # the statistics beside them are the sample's: E[Z | do(X=5)] = 3·2·5 from the fitted chain
    sample = worker.sample(linear_chain, "interventional", DO_X, num_samples=500, query_nodes=["Y", "Z"], seed=11)
    assert f"{sample.mean('Z'):.3f}" in page
    path = tmp_path / "samples.html"
    path.write_text(page, encoding="utf-8")
    assert_not_blank(screenshot(path, tmp_path / "samples.png"))


def test_interventions_alone_imply_an_interventional_sample(worker: Worker, linear_chain: FitResult) -> None:
    result = worker.call("report", {"model_id": linear_chain.model_id, "format": "svg",
                                    "samples": {"interventions": DO_X, "seed": 1}})
    assert result["metadata"]["samples"]["kind"] == "interventional"
    assert result["metadata"]["histograms"] == ["X", "Y", "Z"]
    assert "do(X = 5)" in svg_texts(ET.fromstring(result["content"]))


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pdf", "HTML", None, 3])
def test_a_bad_format_is_invalid_params_naming_format(worker: Worker, linear_chain: FitResult, fmt: Any) -> None:
    with pytest.raises(InvalidParams) as caught:
        worker.call("report", {"model_id": linear_chain.model_id, "format": fmt})
    assert caught.value.field == "format"


@pytest.mark.parametrize(("samples", "field"), [
    ({"kind": "sideways"}, "samples.kind"),
    ({"colour": "red"}, "samples.colour"),
    ({"interventions": [{"type": "hard", "node": "nope", "value": 1}]}, "samples.interventions[0].node"),
    ({"num_samples": 0}, "samples.num_samples"),
    ({"query_nodes": ["X", "Q"]}, "samples.query_nodes[1]"),
    ("all of them", "samples"),
])
def test_a_bad_sample_request_names_its_field_under_samples(worker: Worker, linear_chain: FitResult,
                                                             samples: Any, field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        worker.call("report", {"model_id": linear_chain.model_id, "samples": samples})
    assert caught.value.field == field


def test_an_unknown_model_is_model_not_found(worker: Worker, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        worker.report("m-0123456789abcdef", tmp_path / "missing.html")
    assert not (tmp_path / "missing.html").exists()


# -- scm report and the demo's report ---------------------------------------------------


def report_parser() -> argparse.ArgumentParser:
    """The `scm` parser with `report` added, as cli.build_parser does for its own commands."""
    parser = argparse.ArgumentParser(prog="scm")
    common.add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True)
    cli_report.register(commands)
    return parser


def test_scm_report_fits_a_request_and_prints_the_path(worker_python: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chain.html"
    args = report_parser().parse_args(["report", str(FIXTURES / "linear_chain.json"), "--out", str(out),
                                       "--do", "X=5", "--query-nodes", "Y,Z", "--python", worker_python])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    parse_html(page)
    assert "do(X = 5)" in page and "seed 42" in page


def test_scm_report_renders_a_failing_fit_with_a_note(worker_python: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "noisy.svg"
    args = report_parser().parse_args(["report", str(FIXTURES / "noisy_data.json"), "-o", str(out),
                                       "--python", worker_python])
    assert cli_report.run(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "validation failed" in captured.err
    assert "R² " in out.read_text(encoding="utf-8")


def test_scm_report_renders_a_stored_model(worker_python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the workers' store
    with Worker(worker_python, worker_args=("--no-warmup", *ONE_THREAD)) as storing:
        stored = fit(storing, fixture_request("multi_parent"), persist=True)
    out = tmp_path / "stored.html"
    args = report_parser().parse_args(["report", "--model", stored.model_id, "--out", str(out),
                                       "--python", worker_python])
    assert cli_report.run(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert stored.model_id in page and all(f">{n}<" in page for n in ("X", "Y", "Z"))


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "--out", "r.html"], "either REQUEST.json or --model"),
    (["report", "x.json", "--model", "m-0123456789abcdef", "--out", "r.html"], "either REQUEST.json or --model"),
    (["report", "--model", "m-0123456789abcdef", "--out", "r.pdf"], "suffix"),
    (["report", "--model", "m-0123456789abcdef", "--out", "no/such/dir/r.html"], "does not exist"),
])
def test_scm_report_refuses_bad_arguments_before_starting_a_worker(argv: list[str], message: str,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = report_parser().parse_args(argv)
    with pytest.raises(common.InputError, match=message):
        cli_report.run(args)


def test_the_demo_report_shows_an_intervention_on_the_chain(worker: Worker, linear_chain: FitResult,
                                                            tmp_path: Path) -> None:
    path = cli_report.write_demo_report(worker, linear_chain, tmp_path / "demo", name="linear_chain")
    assert path == tmp_path / "demo" / "report-linear_chain.html"
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    parse_html(page)
    assert "do(X = 5)" in page and 'id="samples"' in page
