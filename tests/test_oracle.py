"""The oracle's own machinery: comparisons, reports, argument validation, scoping and determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jax
import numpy as np
import pytest

import backprop
from backprop.nlp.cbow import SimpleCBOW
from backprop.verify import (
    JSON_SCHEMA,
    ROWS,
    LayerMismatch,
    RunReport,
    check_example,
    get_row,
    names,
    verify,
    verify_all,
    verify_or_raise,
)
from backprop.verify.oracle import Options
from backprop.verify.report import Example
from backprop.verify.tolerances import TOLERANCES, compare

F64 = TOLERANCES["float64"]
# stop at the first failure: what most tests judge
FIRST: dict[str, Any] = {"max_failures": 1, "scope": False}


class DoubledDb(backprop.Affine):
    def backward(self, dout: Any) -> Any:
        dx = super().backward(dout)
        self.db = self.db * 2.0
        return dx


def test_compare_uses_the_magnitude_of_the_summed_terms() -> None:
    # 1e16 + 1 - 1e16 cancels to 0 in one order and to 2 in another; both are within rounding of the terms
    expected = np.array([0.0, 5.0])
    actual = np.array([2.0, 5.0])
    assert not compare(expected, actual, F64).ok
    assert compare(expected, actual, F64, terms=np.array([1e16, 5.0])).ok


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_terms_or_native_runs_never_widen_the_tolerance(bad: float) -> None:
    expected, actual = np.array([0.0, 1.0]), np.array([5.0, 1.0])  # element 0 is plainly wrong
    assert not compare(expected, actual, F64, terms=np.array([bad, 1.0])).ok
    native = np.array([bad, 1.0])
    assert not compare(expected, actual, TOLERANCES["float32"], native=native).ok


def test_compare_flags_nan_and_names_the_worst_element() -> None:
    cmp = compare(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [np.nan, 4.0]]), F64)
    assert not cmp.ok
    assert cmp.index == (1, 0)
    assert cmp.expected == 3.0 and np.isnan(cmp.actual)
    assert cmp.max_abs == np.inf


@pytest.mark.oracle
def test_failure_report_names_layer_gradient_shapes_worst_element_and_reproduction() -> None:
    report = verify(DoubledDb, "affine", max_examples=25, seed=3)
    assert report.failure is not None
    text = report.failure.render()
    assert "DoubledDb" in text and "'affine'" in text
    assert "db: values differ" in text
    assert "worst element db[" in text and "expected" in text and "actual" in text
    assert "max abs error" in text and "max rel error" in text
    assert "shapes: W (" in text and "dout (" in text
    assert "seed=3" in text and "@reproduce_failure(" in text
    (mismatch,) = report.failure.mismatches
    assert mismatch.worst_actual == pytest.approx(2 * mismatch.worst_expected)
    # the one mistake, found again with db set aside, is the only one; no feature is to blame for it
    assert [f.mismatches[0].check for f in report.failures] == ["db"]
    assert report.verdict == "FAIL" and report.passes_without == ()


@pytest.mark.oracle
def test_failing_example_is_shrunk_and_reproducible() -> None:
    first = verify(DoubledDb, "affine", max_examples=50, seed=7, **FIRST)
    again = verify(DoubledDb, "affine", max_examples=50, seed=7, **FIRST)
    assert first.failure is not None and again.failure is not None
    assert first.failure.shapes == again.failure.shapes
    assert first.failure.to_json()["example"] == again.failure.to_json()["example"]
    # shrinking reaches the report: the smallest failing affine has one sample and one output
    assert first.failure.shapes["dout"] == (1, 1)
    # the snippet rebuilds the exact arrays
    namespace: dict[str, Any] = {}
    from backprop.verify.program import snippet

    exec(snippet(first.failure.example), namespace)
    np.testing.assert_array_equal(namespace["W"], first.failure.example.values["W"])


@pytest.mark.oracle
def test_json_report_is_strict_json_with_schema() -> None:
    run = RunReport(seed=0, max_examples=20, layers=[verify(DoubledDb, "affine", max_examples=20, **FIRST)])
    data = json.loads(json.dumps(run.to_json(), allow_nan=False))
    assert data["schema"] == JSON_SCHEMA
    assert data["passed"] is False
    (layer,) = data["layers"]
    assert layer["verdict"] == "FAIL"
    assert layer["failure"]["checks"][0]["check"] == "db"
    assert layer["failure"]["example"]["values"]["W"]["dtype"] == "float64"


@pytest.mark.oracle
def test_library_layers_pass_and_report_their_error_figures() -> None:
    # five examples a row: each distinct shape compiles, and five are the fewest in which every row draws
    # two shapes (multi_layer_net draws one in four)
    run = verify_all(max_examples=5)
    assert run.passed
    assert [layer.name for layer in run.layers] == [row.name for row in ROWS]
    for layer in run.layers:
        assert layer.examples >= 5 and layer.distinct_shapes >= 2
        assert 0.0 <= layer.max_rel <= F64.rtol


@pytest.mark.oracle
def test_verify_or_raise_raises_an_assertion_with_the_report() -> None:
    with pytest.raises(LayerMismatch, match="db: values differ"):
        verify_or_raise(DoubledDb, "affine", max_examples=30, **FIRST)
    assert verify_or_raise(backprop.Relu, "relu", max_examples=10).passed


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"against": "no_such_layer"}, f"unknown layer 'no_such_layer'; known: {', '.join(names())}"),
        ({"max_examples": 0}, "max_examples must be an integer >= 1, got 0"),
        ({"max_examples": True}, "max_examples must be an integer >= 1, got True"),
        ({"max_examples": 2.5}, "max_examples must be an integer, got 2.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"dtype": "float16"}, "dtype must be one of float64, float32; got 'float16'"),
    ],
)
def test_bad_arguments_raise_value_error_repeating_the_value(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"against": "relu"} | kwargs
    with pytest.raises(ValueError) as caught:
        verify(backprop.Relu, args.pop("against"), **args)
    assert str(caught.value) == message


@pytest.mark.oracle
def test_a_class_without_backward_is_rejected_by_name() -> None:
    class NoBackward:
        def forward(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match="NoBackward has no backward method"):
        verify(NoBackward, "relu")
    with pytest.raises(TypeError, match="layer must be a class, got Relu"):
        verify(backprop.Relu(), "relu")  # type: ignore[arg-type]


@pytest.mark.oracle
def test_exceptions_inside_the_users_layer_become_part_of_the_report() -> None:
    class Raises(backprop.Sigmoid):
        def backward(self, dout: Any) -> Any:
            raise ZeroDivisionError("oops")

    example = Example(
        row="sigmoid", dtype="float64", values={"x": np.array([0.5])}, cotangents=(np.array([2.0]),)
    )
    with pytest.raises(LayerMismatch) as caught:
        check_example("sigmoid", Raises, example)
    (mismatch,) = caught.value.failure.mismatches
    assert (mismatch.check, mismatch.kind) == ("backward", "exception")
    assert "ZeroDivisionError: oops" in mismatch.message


@pytest.mark.oracle
def test_x64_is_scoped_to_the_oracle() -> None:
    verify(backprop.Relu, "relu", max_examples=5)
    assert jax.config.read("jax_enable_x64") is False
    assert jax.numpy.zeros(1).dtype == np.float32


def test_import_backprop_needs_numpy_only() -> None:
    code = "import sys, backprop; print(sorted(m for m in ('jax', 'hypothesis', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_rows_declare_everything_the_harness_needs() -> None:
    row = get_row("affine")
    assert [a.name for a in row.params] == ["W", "b"]
    assert [a.name for a in row.placed("init")] == ["W", "b"]
    assert [a.grad for a in row.differentiable] == ["dW", "db", "dx"]
    assert [a.grad for a in row.read_from("return")] == ["dx"]
    loss = get_row("softmax_with_loss")
    assert loss.loss
    assert [a.name for a in loss.placed("forward") if not a.differentiable] == ["t"]
    assert [a.name for a in loss.differentiable] == ["x"]


class _Unbuildable(backprop.Relu):
    def __init__(self) -> None:
        raise RuntimeError("no layer here")


class _UnbuildableModel(SimpleCBOW):
    def __init__(self, vocab_size: int, hidden_size: int, dtype: Any = "f") -> None:
        raise RuntimeError("no model here")


@pytest.mark.oracle
@pytest.mark.parametrize(("layer", "row"), [(_Unbuildable, "relu"), (_UnbuildableModel, "simple_cbow")])
def test_a_failed_constructor_is_the_one_finding(layer: type, row: str) -> None:
    # the search for the next mistake sets the constructor's aside and must not then call forward on
    # the instance that was never built ("'NoneType' object has no attribute 'forward'")
    report = verify(layer, row, max_examples=5, scope=False)
    assert [[m.check for m in f.mismatches] for f in report.failures] == [["constructor"]]
    assert "NoneType" not in report.failures[0].render()


class _BuiltOnce(backprop.Relu):
    """Right, but its constructor raises from the second instance on."""

    built = 0

    def __init__(self) -> None:
        type(self).built += 1
        if type(self).built > 1:
            raise RuntimeError("built twice")
        super().__init__()


@pytest.mark.oracle
def test_no_stage_uses_an_instance_whose_constructor_failure_is_set_aside() -> None:
    example = Example(
        row="relu", dtype="float64", values={"x": np.array([0.5, -1.0])}, cotangents=(np.ones(2),)
    )
    with pytest.raises(LayerMismatch, match="usual: constructor raised RuntimeError"):
        check_example("relu", _BuiltOnce, example)
    _BuiltOnce.built = 0
    # the kinds a later stage gives a constructor's exception, all set aside as a search for more does
    ignored = Options(ignore=frozenset({("constructor", k) for k in ("exception", "stale", "stateful")}))
    check_example("relu", _BuiltOnce, example, ignored)  # every later stage stops at its constructor
