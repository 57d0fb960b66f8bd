"""Adversarial cases for the culprit search (issue 20): book-style layers (helpers, loops, ``+=``, caches,
partial products, transposed reshapes) with one wrong line marked ``# BUG``
(``tests/fixtures/culprit_adversarial/``). The culprit must be that line or None: never a right line, never a
line after the bug, and the wrong line is never marked right. Right layers written oddly get no culprit.

Cases the engine gets wrong today are ``xfail(strict=True)`` with the problem named, so that a fix turns
them into an error and the marker is removed. Findings in detail: the helper report of branch h-adv."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from backprop.verify import get_row, oracle, verify
from tests.catalogue import bug_line
from tests.fixtures.culprit_adversarial import layers, nlp

FIRST: dict[str, Any] = {"max_failures": 1, "scope": False, "seed": 0, "max_examples": 100}


@dataclass(frozen=True)
class Adv:
    """A wrong layer: its class, row, dtype, the class whose source holds the ``# BUG`` line, and whether
    the book's ``-log(y + 1e-7)`` must be allowed (so that the failure is the backward's)."""

    module: ModuleType
    name: str
    row: str
    dtype: str = "float64"
    holder: str = ""
    epsilon: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}-{self.dtype}"


def _xf(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=reason)


COINCIDENCE = (
    "the wrong line is marked right: its value equals another node's (dh_next) on the all-zero example"
)

CASES = [
    Adv(layers, "BNDvarFactor", "batch_normalization"),
    Adv(layers, "BNPlusEqualsSign", "batch_normalization"),
    Adv(layers, "BNHelperAxis", "batch_normalization"),
    Adv(layers, "BNForwardCache", "batch_normalization"),
    Adv(layers, "BNDmuSign", "batch_normalization"),
    Adv(layers, "BNFloat32Std", "batch_normalization", "float32"),
    Adv(layers, "BNFloat32Std", "batch_normalization"),
    Adv(layers, "BNMomentumSwap", "batch_normalization"),
    Adv(layers, "BNMutatesInput", "batch_normalization"),
    Adv(layers, "AffineDbKeepdims", "affine"),
    Adv(layers, "SWLPartialDivide", "softmax_with_loss", epsilon=True),
    Adv(layers, "SWLSign", "softmax_with_loss", epsilon=True),
    Adv(layers, "AffineTransposedDW", "affine"),
    Adv(layers, "AffineDbNoAxis", "affine"),
    Adv(layers, "TwoLayerNetBadAffine", "two_layer_net", holder="_AffineBadDW", epsilon=True),
    Adv(layers, "TwoLayerNetBadLoss", "two_layer_net", holder="_BadSWL", epsilon=True),
    Adv(layers, "TwoLayerNetBadGradient", "two_layer_net", epsilon=True),
    Adv(nlp, "ConvTransposedReshapeDW", "convolution"),
    Adv(nlp, "ConvDcolWrongOperand", "convolution"),
    Adv(nlp, "LSTMWrongCache", "lstm"),
    Adv(nlp, "LSTMHelperDerivative", "lstm"),
    pytest.param(Adv(nlp, "LSTMPlusEqualsFactor", "lstm"), marks=_xf(COINCIDENCE)),
    Adv(nlp, "LSTMCacheOrder", "lstm"),
    Adv(nlp, "TimeLSTMStoresC", "time_lstm", "float32"),
    Adv(nlp, "TimeLSTMDropsDh", "time_lstm", "float32"),
    Adv(nlp, "TimeLSTMNoAccumulate", "time_lstm", "float32"),
    Adv(nlp, "AttentionWeightBadSoftmax", "attention_weight", holder="_SoftmaxWrongAxis"),
    Adv(nlp, "AttentionWeightTransposed", "attention_weight"),
    Adv(nlp, "WeightSumKeepdims", "weight_sum"),
    Adv(nlp, "NegativeSamplingNoAccumulate", "negative_sampling_loss", epsilon=True),
]

RIGHT = [  # a right layer, oddly written, and a wrong case of its row whose failing example it is searched on
    (layers, "BNRightOdd", "BNDvarFactor", "batch_normalization", False),
    (layers, "SWLRight", "SWLPartialDivide", "softmax_with_loss", False),
    (layers, "BNDmuNegatedRight", "BNDmuSign", "batch_normalization", False),
    (nlp, "LSTMRight", "LSTMWrongCache", "lstm", False),
    (nlp, "WeightSumRight", "WeightSumKeepdims", "weight_sum", False),
]


def _verify(module: ModuleType, name: str, row: str, dtype: str, epsilon: bool) -> Any:
    allow = {"allow": ("epsilon",)} if epsilon else {}
    return verify(getattr(module, name), row, dtype=dtype, **FIRST, **allow)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_culprit_is_the_bug_line_or_none(case: Adv) -> None:
    where = bug_line(getattr(case.module, case.holder or case.name))
    assert where is not None, f"{case.name}: no '# BUG' line"
    bug = (str(Path(where[0]).resolve()), where[1])
    report = _verify(case.module, case.name, case.row, case.dtype, case.epsilon)
    assert report.failure is not None, f"{case.name} passed"
    located = report.failure.located
    assert located is not None, f"{case.name}: the failure was not searched"
    marks = {(str(Path(x.file).resolve()), x.line): x.mark for x in located.lines}
    assert marks.get(bug) != "right", f"{case.name}: the wrong line {bug[1]} is marked right"
    if located.culprit is not None:
        found = (str(Path(located.culprit.file).resolve()), located.culprit.line)
        assert found == bug, (
            f"{case.name}: culprit line {found[1]} ({located.culprit.source.strip()}), bug {bug[1]}"
        )
    else:
        assert located.note, f"{case.name}: no culprit and no sentence"


@pytest.mark.oracle
@pytest.mark.parametrize(("module", "right", "wrong", "row", "epsilon"), RIGHT, ids=[r[1] for r in RIGHT])
def test_a_right_layer_gets_no_culprit(
    module: ModuleType, right: str, wrong: str, row: str, epsilon: bool
) -> None:
    assert _verify(module, right, row, "float64", epsilon).failure is None, f"{right} fails"
    report = _verify(module, wrong, row, "float64", epsilon)
    assert report.failure is not None
    located = oracle.locate(get_row(row), getattr(module, right), report.failure.example)
    assert located.culprit is None, f"{right}, right, gets a culprit: {located.culprit}"
