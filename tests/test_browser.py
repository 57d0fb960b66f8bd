"""The HTML report as a person sees it: rendered by a real headless Chromium (Debian's ``chromium``).

A report with a failing layer (the book's SoftmaxWithLoss, whose backward ignores dout) and a passing one
(the library's Affine) is opened from disk; the test reads the DOM after rendering (verdicts, three heat
maps per wrong array, working copy buttons) and every request the page made: none may leave it. Outside CI
the tests are skipped when Chromium is absent; in CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backprop.verify import get_row, verify
from backprop.verify.html import document
from backprop.verify.loader import load_class
from backprop.verify.report import LayerReport, RunReport
from tests.browser import Browser, chromium

pytestmark = pytest.mark.oracle  # every test here runs the oracle

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "tests/fixtures/learner/book_layers.py"

# Runs in the page after it loaded: what a person sees, then one click on the first copy button.
SUMMARY = """
(async () => {
  const q = (s, r = document) => Array.from(r.querySelectorAll(s));
  const shown = (e) => e.getClientRects().length > 0 && !e.hidden;
  const summary = {
    verdicts: q("table.results tr.layer-row").map((tr) =>
      [tr.cells[0].textContent, tr.cells[1].textContent, tr.querySelector(".verdict").textContent]),
    gradients: q("div.gradient").map((g) => ({
      check: g.dataset.check,
      roles: q("svg.heatmap", g).filter(shown).map((s) => s.dataset.role),
      cells: q("svg.heatmap", g).map((s) => s.querySelectorAll("rect > title").length),
      colourbar: q("svg.colourbar", g).filter(shown).length,
    })),
    buttons: q("button.copy").map((b) => ({ shown: shown(b), text: b.textContent })),
    programs: q("div.program pre").map((p) => p.textContent),
    histograms: q("svg.histogram").filter(shown).length,
  };
  const button = document.querySelector("button.copy");
  if (button && shown(button)) {
    button.click();
    await new Promise((done) => setTimeout(done, 300));
    summary.clicked = button.textContent;
  }
  return summary;
})()
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")
    with Browser(executable) as running:
        yield running


@pytest.fixture(scope="module")
def run() -> Iterator[RunReport]:
    path = list(sys.path)
    book = load_class(f"{BOOK}:SoftmaxWithLoss")
    failing = verify(book, "softmax_with_loss", max_examples=30, dtype="float64", scope=False)
    passing = verify(get_row("affine").layer, "affine", max_examples=30, dtype="float64")
    sys.path[:] = path
    sys.modules.pop(book.__module__, None)
    assert not failing.passed and passing.passed
    yield RunReport(seed=0, max_examples=30, layers=[failing, passing])


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, run: RunReport) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(document(run, "backprop-verify ..."), encoding="utf-8")
    return path


def _arrays(report: LayerReport) -> list[str]:
    """The checks of ``report`` whose evidence holds an expected and an actual array of one shape."""
    return [
        ev.check
        for f in report.failures
        for ev in f.mismatches
        if ev.expected is not None
        and ev.actual is not None
        and ev.expected.shape == ev.actual.shape
        and ev.expected.size > 0
    ]


def test_the_rendered_report_shows_verdicts_heat_maps_and_copy_buttons(
    browser: Browser, page: Path, run: RunReport
) -> None:
    loaded = browser.load(page, SUMMARY)
    seen: dict[str, Any] = loaded.value
    assert [v[2] for v in seen["verdicts"]] == [r.verdict for r in run.layers]
    assert seen["verdicts"][0][0] == "book_layers.SoftmaxWithLoss vs softmax_with_loss"
    assert seen["verdicts"][1][0] == "affine" and seen["verdicts"][1][2] == "pass"
    failing = run.layers[0]
    assert "dx" in _arrays(failing)
    assert [g["check"] for g in seen["gradients"]] == _arrays(failing)
    for gradient in seen["gradients"]:
        assert gradient["roles"] == ["expected", "actual", "difference"], gradient
        assert len(set(gradient["cells"])) == 1 and gradient["cells"][0] >= 1, gradient
        assert gradient["colourbar"] == 1
    # one program and one rerun command per failure, each with a visible copy button that works
    assert len(seen["programs"]) == 2 * len(failing.failures)
    assert seen["buttons"] and all(b["shown"] for b in seen["buttons"]), seen["buttons"]
    assert seen["clicked"] in ("Copied", "Selected: press Ctrl+C")
    assert seen["histograms"] == 1  # the passing layer's error distribution
    assert failing.failures[0].program in seen["programs"]


def test_the_report_makes_no_request_and_breaks_no_policy(browser: Browser, page: Path) -> None:
    loaded = browser.load(page, SUMMARY)
    assert loaded.requests == [loaded.url]  # the page itself, from disk, and nothing else
    assert loaded.log == [] and loaded.exceptions == []  # no policy violation: its own style and script ran


def test_a_request_would_be_seen(browser: Browser, page: Path, tmp_path: Path) -> None:
    # the checks above can fail: a page that loads an outside image is caught twice over
    leaky = tmp_path / "leaky.html"
    text = page.read_text(encoding="utf-8")
    leaky.write_text(text.replace("</body>", '<img src="https://example.invalid/x.png"></body>'), "utf-8")
    loaded = browser.load(leaky)
    assert "https://example.invalid/x.png" in loaded.requests
    assert any(entry.startswith("security:") for entry in loaded.log), loaded.log


def test_without_javascript_the_program_is_plain_text_and_no_button_shows(
    browser: Browser, page: Path
) -> None:
    loaded = browser.load(page, SUMMARY, scripts=False)
    seen = loaded.value
    assert seen["buttons"] and not any(b["shown"] for b in seen["buttons"])
    assert len(seen["programs"]) >= 2 and all(p.strip() for p in seen["programs"])
    assert all(g["roles"] == ["expected", "actual", "difference"] for g in seen["gradients"])
