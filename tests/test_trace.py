"""The one driver of the check stages: ``stages.drive`` makes a list of ``Call`` records against a layer and
returns its ``Trace``; the kind of a raised exception comes from the call record, not from its label."""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop import Relu
from backprop.verify.findings import Findings
from backprop.verify.guard import Guard
from backprop.verify.registry import get_row
from backprop.verify.stages import Call, Case, Expect, drive, use
from backprop.verify.vocabulary import Kind

ROW = get_row("relu")
X = np.array([[1.0, -2.0], [3.0, -4.0]])
DOUT = np.array([[0.5, 0.5], [-1.0, 2.0]])


def _case(layer: type) -> Case:
    return Case(ROW, layer, {"x": X}, (DOUT,), np.dtype("float64"))


def _run(layer: type, calls: list[Call]) -> tuple[Any, Findings]:
    with Guard(5.0) as guard:
        found = Findings(ROW, ROW.tolerance("float64"), guard)
        return drive(_case(layer), calls, found), found


class DoubledRelu(Relu):
    def backward(self, dout: Any) -> Any:
        return 2 * super().backward(dout)


class RaisesInBackward(Relu):
    def backward(self, dout: Any) -> Any:
        raise RuntimeError("no cache")


class WritesIntoX(Relu):
    def forward(self, x: Any) -> Any:
        out = super().forward(x)
        x[...] = 0.0
        return out


def test_a_right_layer_runs_every_call_and_is_right() -> None:
    trace, found = _run(Relu, use({"x": X}, (DOUT,), expect=Expect({"x": X}, (DOUT,))))
    assert trace.done and trace.right and not found.failed
    assert [c.op for c in trace.calls] == ["build", "forward", "backward", "read"]
    np.testing.assert_array_equal(trace.reads[0].value, np.where(X > 0, DOUT, 0.0))


def test_a_wrong_gradient_is_judged_with_the_expected_kind() -> None:
    expect = Expect({"x": X}, (DOUT,), Kind.STALE)
    trace, found = _run(DoubledRelu, use({"x": X}, (DOUT,), expect=expect))
    assert not trace.done and not trace.right
    assert [(e.check, e.kind) for e in found.mismatches] == [("dx", Kind.STALE)]


def test_an_exception_takes_the_kind_of_its_call_and_ends_the_trace() -> None:
    calls = [*use({"x": X}, (DOUT,), "training: ", raised=Kind.STALE), Call("forward")]
    trace, found = _run(RaisesInBackward, calls)
    assert not trace.done and [c.op for c in trace.calls] == ["build", "forward", "backward"]
    assert [(e.check, e.kind, e.where) for e in found.mismatches] == [
        ("backward", Kind.STALE, "training: backward()")
    ]
    # the same call with no stage's kind is a plain exception, whatever its label says
    _, plain = _run(RaisesInBackward, use({"x": X}, (DOUT,), "training: "))
    assert [e.kind for e in plain.mismatches] == [Kind.EXCEPTION]


def test_the_layer_gets_copies_unless_the_call_says_otherwise() -> None:
    given = {"x": X.copy()}
    _run(WritesIntoX, use(given, (DOUT,)))
    np.testing.assert_array_equal(given["x"], X)  # built and called on copies
    trace, _ = _run(WritesIntoX, [Call("build", given), Call("forward", given, copied=False)])
    assert trace.done and not np.any(given["x"])  # the very arrays: a batch buffer the caller refills
