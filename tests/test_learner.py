"""Testing the tester on real learners' code: every learner-style layer (``catalogue/learner.py``) and every
layer that is right once but wrong in training (``catalogue/training.py``) gets exactly its pinned verdict,
diagnosis, scope and notes."""

from __future__ import annotations

import pytest

from backprop.verify import verify
from backprop.verify.report import LayerReport
from tests.catalogue.learner import LEARNER, Expect
from tests.catalogue.training import TRAINING

CASES = LEARNER + TRAINING


def _codes(report: LayerReport) -> set[str]:
    return {m.diagnosis for f in report.failures for m in f.mismatches}


def _id(case: Expect) -> str:
    extra = "-".join(f"{k}" for k in case.options)
    return f"{case.layer.__name__}-{case.dtype}" + (f"-{extra}" if extra else "")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_verdict_is_exactly_the_pinned_one(case: Expect) -> None:
    report = verify(case.layer, case.against, dtype=case.dtype, **case.options)
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
