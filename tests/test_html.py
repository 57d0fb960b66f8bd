"""The HTML report: its heat maps hold exactly the failure's arrays, every shape has a sensible layout,
the page is self-contained, and ``--html`` and ``_repr_html_`` render it."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from backprop.verify import get_row, verify
from backprop.verify import heatmap as hm
from backprop.verify.cli import main
from backprop.verify.html import CSP, document, fragment, heat_maps, located_body
from backprop.verify.loader import load_class
from backprop.verify.mismatch import Culprit, Line, Located, Mismatch
from backprop.verify.report import Example, Failure, LayerReport, RunReport
from tests.catalogue.broken import ConvCol2imAssigns

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "tests/fixtures/learner/book_layers.py"


@dataclass
class Map:
    """One rendered heat map: its attributes, each cell's (x, y, title) and the marked cell's corner."""

    attrs: dict[str, str]
    cells: list[tuple[float, float, str]] = field(default_factory=list)
    marked: tuple[float, float] | None = None

    def values(self, check: str) -> dict[tuple[int, ...], float]:
        """Each cell's index and value, read back from its title (``dW[1, 2] = 0.5``)."""
        out = {}
        for _, _, title in self.cells:
            assert title.startswith(check), title
            where, value = title[len(check) :].split(" = ")
            index = tuple(int(i) for i in where.strip("[]").split(", ")) if where else ()
            assert index not in out, f"{index} drawn twice"
            out[index] = float(value)
        return out

    def cell_at(self, corner: tuple[float, float]) -> str:
        return next(t for x, y, t in self.cells if (x, y) == corner)


class _Maps(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.maps: list[Map] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and a.get("class") == "heatmap":
            self.maps.append(Map(a))
        elif tag == "rect" and self.maps and not self.maps[-1].attrs.get("done"):
            if a.get("class") == "worst":
                self.maps[-1].marked = (float(a["x"]) - 1, float(a["y"]) - 1)
            elif "fill" in a and a["fill"] != "none":
                self.maps[-1].cells.append((float(a["x"]), float(a["y"]), ""))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title and self.maps and not self.maps[-1].attrs.get("done"):
            x, y, _ = self.maps[-1].cells[-1]
            self.maps[-1].cells[-1] = (x, y, data)

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag == "svg" and self.maps and self.maps[-1].attrs.get("class") == "heatmap":
            self.maps[-1].attrs["done"] = "1"


def maps_of(text: str) -> list[Map]:
    parser = _Maps()
    parser.feed(text)
    return parser.maps


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def assert_maps_hold(
    maps: list[Map], check: str, expected: np.ndarray, actual: np.ndarray, worst: tuple[int, ...]
) -> None:
    """The three maps of ``check`` hold exactly expected, actual and their difference, worst marked."""
    assert [m.attrs["data-role"] for m in maps] == ["expected", "actual", "difference"]
    with np.errstate(invalid="ignore"):
        arrays = (expected, actual, actual - expected)
    for m, array in zip(maps, arrays, strict=True):
        assert m.attrs["data-check"] == check and m.attrs["data-shape"] == ",".join(map(str, array.shape))
        values = m.values(check)
        assert values, m.attrs
        for index, value in values.items():
            assert _same(value, float(array[index])), (m.attrs["data-role"], index, value, array[index])
        assert m.marked is not None and m.cell_at(m.marked).startswith(hm.where(check, worst) + " = ")


# ---- the heat maps hold the failure's arrays ----------------------------------------------------------


@pytest.fixture(scope="module")
def book_report() -> Iterator[LayerReport]:
    path = list(sys.path)
    book = load_class(f"{BOOK}:SoftmaxWithLoss")
    report = verify(book, "softmax_with_loss", max_examples=30, dtype="float64", scope=False)
    sys.path[:] = path
    sys.modules.pop(book.__module__, None)
    yield report


def _check_report(report: LayerReport) -> int:
    """Compare every rendered map of ``report`` with its failures' evidence; the number of checks seen."""
    maps = maps_of(fragment(report))
    seen = 0
    for failure in report.failures:
        for m in failure.mismatches:
            if m.expected is None or m.actual is None or m.expected.shape != m.actual.shape:
                continue
            trio, maps = maps[:3], maps[3:]
            worst = m.index if m.index is not None else ()
            assert_maps_hold(trio, m.check, np.asarray(m.expected), np.asarray(m.actual), worst)
            seen += 1
    assert maps == [], "maps left over"
    return seen


@pytest.mark.oracle
def test_the_heat_maps_hold_the_failures_arrays(book_report: LayerReport) -> None:
    assert not book_report.passed
    checks = [m.check for f in book_report.failures for m in f.mismatches]
    assert "dx" in checks
    assert _check_report(book_report) >= 1


@pytest.mark.oracle
def test_the_heat_maps_of_a_4d_gradient_hold_its_arrays() -> None:
    report = verify(
        ConvCol2imAssigns, "convolution", max_examples=30, dtype="float64", max_failures=1, scope=False
    )
    assert report.failure is not None and any(ev.check == "dx" for ev in report.failure.mismatches)
    assert _check_report(report) >= 1
    dx = next(ev for ev in report.failure.mismatches if ev.check == "dx")
    assert dx.expected is not None and dx.expected.ndim == 4


# ---- layouts --------------------------------------------------------------------------------------------------


SHAPES = [
    (),
    (5,),
    (70,),
    (3, 4),
    (1, 2),
    (2, 3, 4),
    (2, 3, 4, 5),
    (2, 2, 2, 3, 3),
    (100, 100),
    (3000,),
    (50, 8, 6, 6),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_shape_is_drawn_with_the_worst_element_marked(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    expected = np.array(rng.normal(size=shape))
    actual = np.array(expected + rng.normal(size=shape) * 0.1)
    worst = tuple(int(n * 0.7) for n in shape)
    actual[worst] = np.nan if len(shape) == 2 else actual[worst] + 5.0
    m = Mismatch(check="dW", primal="dW", kind="value", message="values differ", index=worst)
    trio = maps_of(heat_maps(m, expected, actual))
    assert_maps_hold(trio, "dW", expected, actual, worst)
    drawn = trio[0].values("dW")
    if expected.size <= hm.MAX_CELLS and all(n <= hm.MAX_SIDE for n in shape[-2:]):
        assert len(drawn) == expected.size  # a small array is drawn whole
    assert len(drawn) <= hm.MAX_CELLS
    corners = {(x, y) for x, y, _ in trio[0].cells}
    assert len(corners) == len(drawn)  # no two cells on top of each other


def test_nan_is_dark_grey_and_the_scale_is_shared_and_symmetric() -> None:
    expected = np.array([[1.0, -2.0], [0.5, 0.0]])
    actual = np.array([[1.0, 2.0], [np.nan, 0.0]])
    m = Mismatch(check="dx", primal="dx", kind="value", message="", index=(0, 1))
    text = heat_maps(m, expected, actual)
    assert 'data-scale="4.0"' in text  # the largest |value| of the three: the difference 2 - (-2)
    assert hm.colours(np.array([np.nan, np.inf, 4.0, -4.0, 0.0]), 4.0) == [
        hm.NONFINITE,
        hm.NONFINITE,
        "#b2182b",
        "#2166ac",
        "#f7f7f7",
    ]
    assert "dx[1, 0] = nan" in text


def test_the_histogram_counts_every_example() -> None:
    errors = [0.0, 0.0, 1e-17, 3e-16, 2e-16, 1e-300, 5e-12]
    text = hm.histogram(errors, rtol=1e-9, eps=2.2e-16)
    counts = [int(n) for n in re.findall(r'class="bar" data-count="(\d+)"', text)]
    assert sum(counts) == len(errors) and counts[0] == 2
    assert 'data-examples="7"' in text


# ---- the page --------------------------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.oracle
def test_the_page_is_self_contained_and_its_policy_allows_only_its_own_style_and_script(
    book_report: LayerReport,
) -> None:
    page = document(RunReport(seed=0, max_examples=30, layers=[book_report]))
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert f"style-src {_sha(style)}" in CSP and f"script-src {_sha(script)}" in CSP
    assert "default-src 'none'" in CSP and CSP in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page


@pytest.mark.oracle
def test_repr_html_shows_the_verdict_and_the_heat_maps(book_report: LayerReport) -> None:
    text = book_report._repr_html_()
    assert book_report.verdict in text and 'class="heatmap"' in text and "button" in text
    run = RunReport(seed=0, max_examples=30, layers=[book_report])
    assert run._repr_html_().count('class="heatmap"') == text.count('class="heatmap"')
    passing = verify(get_row("mul").layer, "mul", max_examples=20, dtype="float64")
    shown = passing._repr_html_()
    assert "pass" in shown and 'class="histogram" data-examples="20"' in shown


# ---- the command line -------------------------------------------------------------------------------------


@pytest.mark.oracle
def test_html_writes_the_report_of_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    code = main(["--layer", f"{BOOK}:SoftmaxWithLoss", "--against", "softmax_with_loss", "--dtype", "float64",
                 "--examples", "20", "-q", "--html", str(out)])  # fmt: skip
    assert code == 1
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "FAIL" in page and page.count('class="heatmap"') >= 3
    assert "--html" in page  # the command that made it
    sys.modules.pop("book_layers", None)


@pytest.mark.oracle
@pytest.mark.parametrize("where", ["missing/report.html", "", "-"])
def test_html_to_a_bad_path_exits_2_before_running(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / where) if where not in ("", "-") else where
    assert main(["relu", "--html", path]) == 2
    out, err = capsys.readouterr()
    assert "--html" in err and "checking" not in err and out == ""


# ---- the culprit: the layer's own lines, each marked (issue 20) -------------------------------------------

LEARNER_BN = """\
import numpy as np


class BatchNorm:
    def forward(self, x):
        mu = x.mean(axis=0)
        self.xc = x - mu
        var = np.mean(self.xc**2, axis=0)
        self.std = np.sqrt(var + 1e-7)
        return self.xc / self.std

    def backward(self, dout):
        dxc = dout / self.std
        dstd = -np.sum(dout * self.xc / self.std**2, axis=0)
        dvar = 0.5 * dstd / self.std  # x < 1 and <b>: escaped
        for _ in range(2):
            dxc = dxc + 0.0
        return dxc
"""


@pytest.fixture
def learner_bn(tmp_path: Path) -> str:
    path = tmp_path / "learner_bn.py"
    path.write_text(LEARNER_BN)
    return str(path)


def _line(file: str, number: int, mark: str, variable: str = "", node: str = "") -> Line:
    source = LEARNER_BN.splitlines()[number - 1].strip()  # as the search records it: the indent is read back
    return Line(file, number, source, mark, variable, node)  # type: ignore[arg-type]


def _bn_located(file: str) -> Located:
    """As the search would report the learner's BatchNorm: backward's dvar is wrong (its sign, at one
    element, is the made-up bug), traced in execution order, the loop's lines run twice."""
    expected = np.array([[0.25, -1.0, 2.0]])
    actual = np.array([[0.25, 1.0, 2.0]])
    culprit = Culprit(file, 15, _line(file, 15, "culprit").source, "dvar", "the gradient at var",
                      expected, actual, right=("dxc", "dstd"))  # fmt: skip
    lines = (
        _line(file, 6, "right", "mu", "mu"),
        _line(file, 7, "right", "self.xc", "xc"),
        _line(file, 8, "right", "var", "var"),
        _line(file, 9, "right", "self.std", "std"),
        _line(file, 13, "right", "dxc", "the gradient at xc"),
        _line(file, 14, "right", "dstd", "the gradient at std"),
        _line(file, 15, "culprit", "dvar"),
        _line(file, 16, "unmatched"),
        _line(file, 17, "unmatched", "dxc"),
        _line(file, 16, "unmatched"),
        _line(file, 17, "right", "dxc", "the gradient at xc"),
        _line(file, 18, "unmatched"),
    )
    return Located(culprit, lines)


class _Trace(HTMLParser):
    """Each listed line's attributes and cell texts, and the function headings, in the order shown."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict[str, str], list[str]]] = []
        self.functions: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "line" in a.get("class", "").split():
            self.rows.append((a, []))
            self._in = "row"
        elif tag == "td" and self._in == "row":
            self.rows[-1][1].append("")
        elif tag == "p" and a.get("class") == "function":
            self.functions.append("")
            self._in = "function"

    def handle_data(self, data: str) -> None:
        if self._in == "row" and self.rows[-1][1]:
            self.rows[-1][1][-1] += data
        elif self._in == "function":
            self.functions[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("tr", "p"):
            self._in = None


def _trace(text: str) -> _Trace:
    parser = _Trace()
    parser.feed(text)
    return parser


def test_the_culprit_listing_marks_each_line_in_the_order_of_the_file(learner_bn: str) -> None:
    text = located_body(_bn_located(learner_bn))
    trace = _trace(text)
    assert trace.functions == ["BatchNorm.forward (learner_bn.py)", "BatchNorm.backward (learner_bn.py)"]
    numbers = [int(a["data-line"]) for a, _ in trace.rows]
    assert numbers == [6, 7, 8, 9, 13, 14, 15, 16, 17, 18]  # each line once, in the file's order
    marks = {int(a["data-line"]): a["data-mark"] for a, _ in trace.rows}
    assert marks == {6: "right", 7: "right", 8: "right", 9: "right", 13: "right", 14: "right",
                     15: "culprit", 16: "unmatched", 17: "right", 18: "unmatched"}  # fmt: skip
    for a, cells in trace.rows:
        number, mark, source, _node = cells
        assert number == a["data-line"]
        written = LEARNER_BN.splitlines()[int(number) - 1]
        assert source == written.removeprefix(" " * 8)  # as written less the body's indent, unescaped back
        assert (
            mark == {"right": "right", "culprit": "culprit \u25b6", "unmatched": "no match"}[a["data-mark"]]
        )
    nodes = {int(a["data-line"]): cells[3] for a, cells in trace.rows}
    assert nodes[7] == "= xc" and nodes[13] == "= the gradient at xc" and nodes[16] == ""
    assert nodes[15] == "the first wrong line"
    assert "ran 2 times" in next(a["title"] for a, _ in trace.rows if a["data-line"] == "17")


def test_the_culprit_says_what_the_line_should_be_with_the_worst_element(learner_bn: str) -> None:
    text = located_body(_bn_located(learner_bn))
    (summary,) = re.findall(r'<p class="culprit-summary"[^>]*>(.*?)</p>', text, re.S)
    plain = re.sub(r"<[^>]+>", "", summary.replace("<br>", "\n"))
    assert plain.splitlines() == [
        "culprit: line 15 of learner_bn.py: dvar = 0.5 * dstd / self.std  # x &lt; 1 and &lt;b&gt;: escaped",
        "dvar should be the gradient at var: worst element dvar[0, 1]: expected -1.0, got 1.0",
        "the lines before it are right: dxc, dstd match",
    ]
    assert "<b>:" not in text.replace("<b>culprit:</b>", "")  # the learner's source never becomes markup
    assert 'data-found="true"' in text


def test_no_culprit_shows_the_sentence_and_the_lines_without_a_culprit(learner_bn: str) -> None:
    lines = tuple(_line(learner_bn, n, "unmatched") for n in (13, 14, 15))
    note = "no line of BatchNorm.backward matches a node of the graph <of batch_normalization>"
    text = located_body(Located(None, lines, note))
    assert escape(note) in text and note not in text
    assert 'data-found="false"' in text and "culprit-summary" not in text and "no line named" in text
    assert [a["data-mark"] for a, _ in _trace(text).rows] == ["unmatched"] * 3
    assert located_body(Located(None)) == ""  # nothing searched, nothing said


def test_a_source_that_cannot_be_read_is_listed_under_its_file(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.py")
    line = Line(gone, 3, "dx = dout * 2", "culprit", "dx")
    text = located_body(Located(Culprit(gone, 3, line.source, "dx", "the gradient at x"), (line,)))
    trace = _trace(text)
    assert trace.functions == ["gone.py"] and [a["data-mark"] for a, _ in trace.rows] == ["culprit"]
    assert "dx should be the gradient at x" in text and "worst element" not in text  # no arrays kept


def test_a_failure_with_a_culprit_shows_it_on_the_page_and_the_page_stays_self_contained(
    learner_bn: str,
) -> None:
    example = Example("batch_normalization", "float64", {"x": np.ones((2, 3))}, (np.ones((2, 3)),))
    mismatch = Mismatch(check="dx", primal="x", kind="value", message="values differ")
    failure = Failure("learner_bn.BatchNorm", "batch_normalization", example, {"x": (2, 3)}, [mismatch],
                      located=_bn_located(learner_bn))  # fmt: skip
    layer = LayerReport(name="BatchNorm", layer="learner_bn.BatchNorm", against="batch_normalization", dtype="float64",
                        examples=1, failures=[failure])  # fmt: skip
    page = document(RunReport(seed=0, max_examples=1, layers=[layer]))
    assert page.count('class="culprit-summary"') == 1 and page.count('data-mark="culprit"') == 1
    assert (
        page.index("dx: values differ")
        < page.index('class="culprit-summary"')
        < page.index("Smallest failing")
    )
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert f"style-src {_sha(style)}" in CSP  # the new rules are inside the hashed style
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    failure.located = None
    unsearched = document(RunReport(seed=0, max_examples=1, layers=[layer]))
    assert 'class="culprit' not in unsearched and "data-mark" not in unsearched
