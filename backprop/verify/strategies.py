"""Public Hypothesis strategies for layer inputs, built on ``hypothesis.extra.numpy``.

Use them in your own property tests::

    from hypothesis import given
    from backprop.verify.strategies import examples, layer_inputs

    @given(layer_inputs("affine"))
    def test_my_affine_keeps_the_batch(values):
        out = MyAffine(values["W"], values["b"]).forward(values["x"])
        assert out.shape == (values["x"].shape[0], values["W"].shape[1])
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
from hypothesis import strategies as st

from backprop.verify.draw import cotangent_arrays, without_set
from backprop.verify.oracle import examples
from backprop.verify.registry import get_row
from backprop.verify.row import Row
from backprop.verify.vocabulary import DTYPES

__all__ = ["DTYPES", "cotangents", "examples", "layer_inputs", "shapes"]


def _row(layer: str | Row) -> Row:
    if isinstance(layer, Row):
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a registry name or a Row, got {type(layer).__name__}: {layer!r}")
    return get_row(layer)


def shapes(
    layer: str | Row, *, without: Collection[str] = ()
) -> st.SearchStrategy[dict[str, tuple[int, ...]]]:
    """Shapes of every array argument and output of the layer, e.g. {"x": (2, 3), "W": (3, 4), ...},
    drawing none of the features named in ``without`` (``--list`` shows each row's features)."""
    return _row(layer).draw_shapes(without_set(without))


def layer_inputs(
    layer: str | Row, *, dtype: str = "float64", without: Collection[str] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """Every argument of the layer by name (parameters, forward inputs, labels), in its value domain,
    without the features named in ``without``."""
    row = _row(layer)
    row.tolerance(dtype)  # validates the dtype before anything is drawn
    return examples(row, dtype, without=without).map(lambda ex: ex.values)


def cotangents(
    shape: tuple[int, ...], *, dtype: str = "float64", bound: float = 10.0
) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    """Random incoming gradients of ``shape``: finite floats in [-bound, bound], never all ones."""
    if not (isinstance(bound, int | float) and bound > 0 and np.isfinite(bound)):
        raise ValueError(f"bound must be a positive finite number, got {bound!r}")
    dt = np.dtype(dtype)
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return cotangent_arrays(shape, dt, -bound, bound)
