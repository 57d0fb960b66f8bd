"""Every registry row: the manual backward pass agrees with jax.vjp of the reference on drawn examples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, note, target
from hypothesis import strategies as st

from backprop.verify import ROWS, LayerMismatch, Row, check_example, examples, reference_vjp
from backprop.verify.oracle import DTYPES
from backprop.verify.registry import Arg


def _rows() -> Any:
    return pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])


@_rows()
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backward_matches_jax_vjp(row: Row, dtype: str, data: st.DataObject) -> None:
    example = data.draw(examples(row, dtype), label="example")
    measured = check_example(row, row.layer, example)
    # steer the search towards the largest relative error this layer has
    target(max((rel for _, rel in measured.errors.values()), default=0.0), label="max relative error")


@_rows()
@given(data=st.data())
def test_float32_in_gives_float32_out_and_gradients(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row, "float32"), label="example")
    v = example.values
    layer = row.layer(*[v[a.name] for a in row.of_kind("param", "init")])
    out = layer.forward(*[v[a.name] for a in row.of_kind("input", "const")])
    if not row.loss:
        assert np.asarray(out).dtype == np.float32
    result = layer.backward(*example.cotangents)
    grads = [result] if len(row.of_kind("input")) == 1 else list(result)
    grads += [getattr(layer, a.grad) for a in row.of_kind("param")]
    assert [np.asarray(g).dtype for g in grads] == [np.float32] * len(grads)


@_rows()
@given(data=st.data())
def test_cotangent_is_random_and_shaped_like_the_output(row: Row, data: st.DataObject) -> None:
    example = data.draw(examples(row), label="example")
    (cot,) = example.cotangents
    ref = reference_vjp(row, example.values, example.cotangents)
    assert np.shape(cot) == ref.outputs[0].value.shape
    assert not np.all(np.asarray(cot) == 1.0), "a cotangent of ones hides an ignored dout"


def _mutant(row: Row, target: Arg, factor: float) -> type:
    """The library's own layer with one gradient scaled by ``factor``: a bug the oracle must catch."""
    inputs = row.of_kind("input")

    class Mutant(row.layer):  # type: ignore[name-defined,misc]
        def backward(self, *douts: Any) -> Any:
            result = super().backward(*douts)
            if target.kind == "param":
                setattr(self, target.grad, getattr(self, target.grad) * factor)
                return result
            if len(inputs) == 1:
                return result * factor
            return tuple(g * factor if a is target else g for a, g in zip(inputs, result, strict=True))

    Mutant.__qualname__ = f"{row.layer.__name__}_{target.grad}_x{factor}"
    return Mutant


_TARGETS = [(row, arg) for row in ROWS for arg in row.differentiable]


@pytest.mark.parametrize("row,target", _TARGETS, ids=[f"{r.name}-{a.grad}" for r, a in _TARGETS])
@given(data=st.data(), factor=st.sampled_from([-1.0, 0.5, 1.001, 2.0]))
def test_every_scaled_gradient_is_flagged_and_named(
    row: Row, target: Arg, data: st.DataObject, factor: float
) -> None:
    """Testing the tester: on any example where the true gradient is non-zero, a scaled one is caught."""
    example = data.draw(examples(row), label="example")
    true = reference_vjp(row, example.values, example.cotangents).grads[target.name].value
    tol = row.tolerance(example.dtype)
    # a scale change is invisible only when the whole gradient sits below the tolerance
    assume(
        np.max(np.abs(true), initial=0.0) * abs(factor - 1) > 4 * (tol.atol + tol.rtol * np.max(np.abs(true)))
    )
    mutant = _mutant(row, target, factor)
    with pytest.raises(LayerMismatch) as caught:
        check_example(row, mutant, example)
    failure = caught.value.failure
    note(failure.render())
    assert [m.check for m in failure.mismatches] == [target.grad]
    assert failure.mismatches[0].kind == "value"
    assert mutant.__qualname__ in failure.render()
