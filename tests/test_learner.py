"""Testing the tester on real learners' code: every learner-style layer (``catalogue/learner.py``) and every
layer that is right once but wrong in training (``catalogue/training.py``) gets exactly its pinned verdict,
diagnosis, scope and notes.

Each case runs one search, as much of it as its record pins: the first failure (most), the scope searches
(a record with ``passes_without``) or the further failures (a record with ``failures`` above 1), each in a
test of its own. A failure of the training catalogue's layers also has its printed program run in a fresh
process (``tests/reproduce.py``)."""

from __future__ import annotations

import pytest

from backprop.verify import verify
from backprop.verify.report import LayerReport
from tests.catalogue import Expect
from tests.catalogue.learner import LEARNER
from tests.catalogue.training import TRAINING
from tests.reproduce import Programs, assert_reproduces

pytestmark = pytest.mark.oracle

CASES = LEARNER + TRAINING
SCOPED = [c for c in CASES if c.passes_without]
FURTHER = [c for c in CASES if c.failures > 1 and not c.passes_without]
FIRST = [c for c in CASES if c not in SCOPED and c not in FURTHER]
UNREPRODUCIBLE = ("SigmoidRandomSlip",)
"""A random slip reproduces only with the probability of the slip itself."""


def _codes(report: LayerReport) -> set[str]:
    return {m.diagnosis for f in report.failures for m in f.mismatches}


def _id(case: Expect) -> str:
    extra = "-".join(f"{k}" for k in case.options)
    return f"{case.layer.__name__}-{case.dtype}" + (f"-{extra}" if extra else "")


def _assert_verdict(case: Expect, report: LayerReport) -> None:
    rendered = "\n".join(f.render() for f in report.failures)
    if case.verdict == "pass":
        assert report.passed, f"{case.layer.__name__} ({case.why}) must pass:\n{rendered}{report.error or ''}"
        for note in case.notes:
            assert any(note in n for n in report.notes), f"note {note!r} missing from {report.notes}"
        return
    assert not report.passed, f"{case.layer.__name__} ({case.why}) passed; notes: {report.notes}"
    assert report.error is None, report.error
    codes = _codes(report)
    assert case.diagnoses <= codes, (
        f"{case.layer.__name__}: expected {sorted(case.diagnoses)}, got {codes}\n{rendered}"
    )
    if case.any_of:
        assert case.any_of & codes, (
            f"{case.layer.__name__}: expected one of {sorted(case.any_of)}, got {codes}"
        )
    assert set(case.passes_without) <= set(report.passes_without), (
        f"{case.layer.__name__}: expected scope {case.passes_without}, got {report.passes_without}\n{rendered}"
    )
    for words in case.words:
        assert words in rendered, f"{case.layer.__name__}: {words!r} missing from\n{rendered}"
    for words in case.not_words:
        assert words not in rendered, f"{case.layer.__name__}: {words!r} must not be said\n{rendered}"
    for failure in report.failures:
        assert case.layer.__name__ in failure.render()
        assert all(m.hint and m.explanation for m in failure.mismatches), rendered


def _verify(case: Expect, max_failures: int, scope: bool) -> LayerReport:
    # the culprit line is judged by tests/test_culprit_accuracy.py (the learner classes marked # BUG among them)
    options = {"max_failures": max_failures, "scope": scope, "culprit": False, **case.options}
    return verify(case.layer, case.against, dtype=case.dtype, **options)


def _check(case: Expect, report: LayerReport, programs: Programs) -> None:
    _assert_verdict(case, report)
    if case in TRAINING and report.failures and case.layer.__name__ not in UNREPRODUCIBLE:
        assert_reproduces(programs, report.failures[0])


@pytest.mark.parametrize("case", FIRST, ids=_id)
def test_the_verdict_is_exactly_the_pinned_one(case: Expect, programs: Programs) -> None:
    _check(case, _verify(case, max_failures=1, scope=False), programs)


@pytest.mark.parametrize("case", SCOPED, ids=_id)
def test_the_scope_is_exactly_the_pinned_one(case: Expect, programs: Programs) -> None:
    _check(case, _verify(case, max_failures=case.failures, scope=True), programs)


@pytest.mark.parametrize("case", FURTHER, ids=_id)
def test_the_further_failures_are_exactly_the_pinned_ones(case: Expect, programs: Programs) -> None:
    _check(case, _verify(case, max_failures=case.failures, scope=False), programs)
