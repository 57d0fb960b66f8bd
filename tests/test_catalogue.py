"""Test the tester: the oracle must fail every broken layer, naming the right gradient, and pass every
correct one, however unusually it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from backprop.verify import ROWS, Row, get_row, names, verify
from backprop.verify.html import fragment
from backprop.verify.report import LayerReport
from backprop.verify.vocabulary import CODES
from tests.catalogue import Case, Correct, bug_line, bug_markers, class_span
from tests.catalogue.broken import BROKEN, MulDyWrongSign
from tests.catalogue.correct import CORRECT
from tests.catalogue.learner import LEARNER
from tests.catalogue.training import TRAINING
from tests.reproduce import Programs, assert_reproduces

BROKEN_EXAMPLES = 100
"""A broken layer's search, at seed 0 and again at seed 1: the count ``benchmarks/power.py`` measures with, so
that its table (README, "Benchmarks") gives these very searches' first failures: within 59 examples at seed 0
(one layer, AttentionNaiveSoftmax; every other within 44) and within 44 at seed 1, 1.7 and 2.3 times less
than the budget. The count also sets Hypothesis's schedule (its first tenth are small examples), so another
count would draw other examples than the table's. The search stops at the first failure: the budget costs a
caught layer nothing."""
FLOAT32_EXAMPLES = 50  # an unusual correct layer's float32 run: half the float64 run's time
LIBRARY_EXAMPLES = max(100, settings.default.max_examples)
"""The library's own layers: the default run's count (``backprop-verify``), more under the thorough profile."""
CORRECT_EXAMPLES = 60
"""An unusual correct layer: the search meets the first failure of every broken layer of the catalogue within
59 examples at seeds 0 and 1 (``benchmarks/power.py``), so 60 give a false alarm the same chance to show."""
FIRST: dict[str, Any] = {"max_failures": 1, "scope": False, "culprit": False}
"""The first failure is what these tests judge: its check and diagnosis. Its culprit line is judged once, by
tests/test_culprit_accuracy.py on the same cases, so the search is not paid twice."""


def _found(report: LayerReport) -> str:
    assert report.failure is not None
    return ", ".join(f"{m.check}/{m.kind}" for m in report.failure.mismatches)


def _assert_caught(case: Case, report: LayerReport) -> None:
    assert not report.passed, (
        f"{case.name} ({case.why}) passed the oracle against {case.against!r} "
        f"on {report.examples} examples; expected a {'/'.join(sorted(case.kinds))} mismatch in {case.check}"
    )
    assert report.error is None, f"{case.name}: oracle error instead of a failure: {report.error}"
    failure = report.failure
    assert failure is not None
    hits = [m for m in failure.mismatches if m.check in case.checks and m.kind in case.kinds]
    assert hits, (
        f"{case.name} ({case.why}): expected a mismatch in {case.check!r} of kind {sorted(case.kinds)}, "
        f"got [{_found(report)}]\n{failure.render()}"
    )


def _search(case: Case, seed: int) -> LayerReport:
    """A broken layer's search for its first failure, as the power table measures it."""
    options = {**FIRST, **case.options}
    return verify(
        case.layer, case.against, max_examples=BROKEN_EXAMPLES, seed=seed, dtype=case.dtype, **options
    )


def _assert_passes(case: Correct, report: LayerReport) -> None:
    if report.failure is not None:
        pytest.fail(report.failure.render(), pytrace=False)
    assert report.error is None, f"{case.name}: {report.error}"
    assert report.passed
    assert report.examples >= 1
    assert 'class="histogram"' in fragment(report)  # the HTML report renders every row, in each dtype


def _assert_rendered(report: LayerReport) -> None:
    """The HTML report of a failure draws three heat maps for each check with both arrays."""
    assert report.failure is not None
    arrays = sum(
        ev.expected is not None
        and ev.actual is not None
        and ev.expected.shape == ev.actual.shape
        and ev.expected.size > 0
        for ev in report.failure.mismatches
    )
    assert fragment(report).count('class="heatmap"') == 3 * arrays


@pytest.mark.oracle
@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_broken_layer_is_caught_and_named(case: Case, programs: Programs) -> None:
    report = _search(case, seed=0)
    _assert_caught(case, report)
    assert report.failure is not None
    assert report.failure.against == case.against
    rendered = report.failure.render()
    assert case.layer.__name__ in rendered, rendered
    assert any(check in rendered for check in case.checks), rendered
    # the learner's diagnosis: the first mismatch on the expected gradient carries the expected class
    hit = next(m for m in report.failure.mismatches if m.check in case.checks and m.kind in case.kinds)
    assert hit.diagnosis == case.diagnosis, f"{case.name}: diagnosed {hit.diagnosis!r}\n{rendered}"
    assert f"[{case.diagnosis}] " in rendered and hit.explanation and hit.hint
    _assert_rendered(report)
    assert_reproduces(programs, report.failure)


def test_every_diagnosis_class_has_a_broken_layer() -> None:
    pinned = {c.diagnosis for c in BROKEN}
    pinned |= {code for c in LEARNER + TRAINING if c.verdict == "fail" for code in c.diagnoses}
    assert pinned == set(CODES), sorted(set(CODES) - pinned)


@pytest.mark.oracle
@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_broken_layer_is_caught_with_another_seed(case: Case) -> None:
    _assert_caught(case, _search(case, seed=1))


def _library(case: Correct) -> bool:
    return case.layer is get_row(case.against).layer


UNUSUAL = [c for c in CORRECT if not _library(c)]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("row", "dtype"),
    [(row, dtype) for row in ROWS for dtype in row.dtypes_for(row.layer)],
    ids=lambda v: v.name if isinstance(v, Row) else v,
)
def test_library_layer_passes(row: Row, dtype: str) -> None:
    """The library's own layers, each row in each of its dtypes, as the default run checks them: the one
    place a CI run verifies them."""
    report = verify(row.layer, row, max_examples=LIBRARY_EXAMPLES, seed=0, dtype=dtype)
    case = Correct(layer=row.layer, against=row.name, why=f"the library's {row.layer.__name__}")
    _assert_passes(case, report)


@pytest.mark.oracle
@pytest.mark.parametrize("case", [c for c in UNUSUAL if c.float64], ids=lambda c: c.name)
def test_correct_layer_passes(case: Correct) -> None:
    report = verify(case.layer, case.against, max_examples=CORRECT_EXAMPLES, seed=0, dtype="float64")
    _assert_passes(case, report)


@pytest.mark.oracle
@pytest.mark.parametrize("case", [c for c in UNUSUAL if c.float32], ids=lambda c: c.name)
def test_correct_layer_passes_in_float32(case: Correct) -> None:
    report = verify(case.layer, case.against, max_examples=FLOAT32_EXAMPLES, seed=0, dtype="float32")
    _assert_passes(case, report)


def test_catalogue_covers_every_registry_row() -> None:
    rows = set(names())
    for label, catalogue in (("broken", BROKEN), ("correct", CORRECT)):
        covered = {c.against for c in catalogue}
        assert rows <= covered, (
            f"registry rows without a {label} layer in the catalogue: {sorted(rows - covered)}"
        )
        assert covered <= rows, f"{label} cases against unknown rows: {sorted(covered - rows)}"


def test_catalogue_names_are_unique() -> None:
    for catalogue in (BROKEN, CORRECT):
        ids = [c.name for c in catalogue]
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def _broken_classes() -> list[type]:
    """The classes the oracle must fail: the broken catalogue's and the learners' with a failing verdict."""
    layers = [c.layer for c in BROKEN] + [c.layer for c in LEARNER if c.verdict == "fail"]
    return list(dict.fromkeys(layers))


def test_every_bug_marker_is_one_line_of_a_broken_class() -> None:
    """``# BUG`` marks the one wrong line of a broken class (issue 20's expected culprit): each marker sits on
    a line of code inside the source of a class the oracle must fail, and no class has two."""
    spans: dict[tuple[str, int], type] = {}
    for cls in _broken_classes():
        file, start, end = class_span(cls)
        spans.update({(str(Path(file).resolve()), line): cls for line in range(start, end + 1)})
    catalogue = Path(__file__).parent / "catalogue"
    marked: dict[type, int] = {}
    for path in sorted(catalogue.rglob("*.py")):
        text = path.read_text().splitlines()
        for line in bug_markers(path.read_text()):
            where = f"{path.relative_to(catalogue.parent)}:{line}"
            cls = spans.get((str(path.resolve()), line))
            assert cls is not None, f"{where}: a '# BUG' marker outside every broken class"
            assert text[line - 1].split("#")[0].strip(), f"{where}: the marker must end a line of code"
            assert cls not in marked, f"{where}: a second '# BUG' marker in {cls.__name__}"
            marked[cls] = line
    assert {cls: line for cls, (_, line) in _bug_lines().items()} == marked
    file, line = bug_line(MulDyWrongSign) or ("", 0)
    assert "-dout * self.x" in Path(file).read_text().splitlines()[line - 1]


def _bug_lines() -> dict[type, tuple[str, int]]:
    return {cls: where for cls in _broken_classes() if (where := bug_line(cls)) is not None}
