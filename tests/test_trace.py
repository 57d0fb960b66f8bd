"""The one driver of the check stages: ``stages.drive`` makes a list of ``Call`` records against a layer and
returns its ``Trace``; the kind of a raised exception comes from the call record, not from its label. The
program printed with a failure is rendered from the calls recorded (``program.snippet``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop import Affine, Relu
from backprop.verify.findings import Findings
from backprop.verify.guard import Guard
from backprop.verify.mismatch import Mismatch
from backprop.verify.program import snippet
from backprop.verify.registry import get_row
from backprop.verify.report import Example, Failure, literal
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


def _program(calls: list[Call], mismatch: Mismatch) -> list[str]:
    """The program of a failure of ``Affine`` with these recorded calls, from the line after the example's."""
    example = Example("affine", "float64", {"W": W, "b": B, "x": X1}, (DOUT1,))
    failure = Failure("backprop.Affine", "affine", example, {}, [mismatch], calls=calls)
    lines = snippet(example, AFFINE, Affine, failure).splitlines()
    return lines[lines.index(f"dout = {literal(DOUT1)}") + 1 :]


AFFINE = get_row("affine")
W, B, X1, DOUT1 = np.array([[1.0]]), np.array([0.5]), np.array([[2.0]]), np.array([[1.0]])


def test_the_program_renders_each_recorded_call_with_the_values_it_was_given() -> None:
    """The program is the trace: a value a call was given that the program does not hold yet becomes a
    variable of its own, an in-place write stays one, and each stage's step is named where it starts."""
    values = {"W": W, "b": B, "x": X1}
    step = {"W": np.array([[-0.25]]), "b": np.array([0.0]), "x": np.array([[-0.75]])}
    calls = [
        Call("build", values, label="training: "),
        Call("forward", {**values, "x": np.array([[3.0], [4.0]])}, label="training, another batch: "),
        Call("forward", values, label="training: "),
        Call("backward", cotangents=(DOUT1,), label="training: "),
        Call("read", values),
        Call("update", step, label="training, next step: "),
        Call("forward", step, label="training, next step: "),
        Call("backward", cotangents=(np.array([[-0.25]]),), label="training, next step: "),
    ]
    lines = _program(calls, Mismatch("dW", "W", "stale", expected=np.array([[0.1875]])))
    assert lines == [
        "# training",
        "layer = Affine(W, b)",
        "# training, another batch",
        "x_2 = np.array([[3.0], [4.0]], dtype=np.float64)",
        "out = layer.forward(x_2)",
        "# training",
        "out = layer.forward(x)",
        "dx = layer.backward(dout)",
        "# training, next step",
        "W[...] = np.array([[-0.25]], dtype=np.float64)  # an optimizer's in-place step",
        "b[...] = np.array([0.0], dtype=np.float64)  # an optimizer's in-place step",
        "x[...] = np.array([[-0.75]], dtype=np.float64)  # the batch buffer, refilled in place",
        "out = layer.forward(x)",
        "dout_2 = np.array([[-0.25]], dtype=np.float64)",
        "dx = layer.backward(dout_2)",
        "print(layer.dW)  # jax.vjp: np.array([[0.1875]], dtype=np.float64)",
    ]


def test_a_second_instance_and_a_default_dout_are_rendered_as_made() -> None:
    values = {"W": W, "b": B, "x": X1}
    calls = [
        Call("build", values),
        Call("forward"),  # on the build's own values: the very variables
        Call("build", {**values, "x": X1 + 1}, who="other"),
        Call("forward", who="other"),
        Call("backward", cotangents=None, who="other"),
        Call("backward", cotangents=(DOUT1,)),
    ]
    assert _program(calls, Mismatch("dx", "x", "stateful", expected=np.array([[1.0]]))) == [
        "layer = Affine(W, b)",
        "out = layer.forward(x)",
        "x_2 = np.array([[3.0]], dtype=np.float64)",
        "other = Affine(W, b)",
        "out = other.forward(x_2)",
        "dx = other.backward()",
        "dx = layer.backward(dout)",
        "print(dx)  # jax.vjp: np.array([[1.0]], dtype=np.float64)",
    ]
