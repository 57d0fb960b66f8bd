"""The public Hypothesis strategies: shapes, complete layer inputs and cotangents, for users' own tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop.verify.strategies import cotangents, layer_inputs, shapes


@given(layer_inputs("affine", dtype="float32"))
def test_affine_inputs_fit_together_in_the_requested_dtype(values: dict[str, np.ndarray]) -> None:
    x, W, b = values["x"], values["W"], values["b"]
    assert x.ndim >= 2 and int(np.prod(x.shape[1:])) == W.shape[0] and b.shape == (W.shape[1],)
    assert {x.dtype, W.dtype, b.dtype} == {np.dtype(np.float32)}


@given(layer_inputs("softmax_with_loss"))
def test_labels_are_in_range_or_one_hot(values: dict[str, np.ndarray]) -> None:
    x, t = values["x"], values["t"]
    if t.ndim == 1:
        assert t.dtype == np.int64 and np.all((t >= 0) & (t < x.shape[1]))
    else:
        assert t.shape == x.shape and np.all(t.sum(axis=1) == 1)


@given(shapes("mul"))
def test_mul_shapes_broadcast_to_the_output(s: dict[str, tuple[int, ...]]) -> None:
    assert np.broadcast_shapes(s["x"], s["y"]) == s["out"]


@given(shapes("mul", without=["broadcast"]))
def test_shapes_draw_none_of_the_features_turned_off(s: dict[str, tuple[int, ...]]) -> None:
    assert s["x"] == s["y"] == s["out"]


@given(st.data())
def test_cotangents_are_finite_bounded_and_never_all_ones(data: st.DataObject) -> None:
    g = data.draw(cotangents((3, 2), bound=2.0))
    assert g.shape == (3, 2) and np.all(np.abs(g) <= 2.0) and not np.all(g == 1)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: layer_inputs("conv"), "unknown layer 'conv'"),
        (lambda: layer_inputs(3), "layer must be a registry name or a Row, got int: 3"),  # type: ignore[arg-type]
        (lambda: layer_inputs("relu", dtype="float16"), "no tolerance for dtype float16"),
        (lambda: shapes("mul", without=["colour"]), "unknown feature 'colour'; known: broadcast, nd"),
        (lambda: cotangents((2,), bound=-1.0), "bound must be a positive finite number, got -1.0"),
        (lambda: cotangents((2,), dtype="int8"), "dtype must be one of float64, float32; got 'int8'"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_drawn(call: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()  # type: ignore[operator]
