"""The registry row fits the layers still to come: a Dropout with a random mask drawn inside forward
(its mask reaches the reference through ``capture``), checked by the same harness as every other row."""

from __future__ import annotations

import re
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.verify import Arg, Example, LayerMismatch, Row, check_example, examples


class Dropout:
    """The book's Dropout (chapter 6): forward draws a fresh mask, backward reuses it."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Any = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        if train_flg:
            self.mask = np.random.default_rng().random(x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Any) -> Any:
        return dout * self.mask


class DropoutIgnoresMask(Dropout):
    def backward(self, dout: Any) -> Any:
        return dout.copy()


def dropout(x: Any, mask: Any, dropout_ratio: float, train_flg: bool) -> Any:
    return x * mask if train_flg else x * (1.0 - dropout_ratio)


_RATIOS = hnp.from_dtype(np.dtype(float), min_value=0.1, max_value=0.9)
_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).map(lambda s: {"x": s, "out": s})

DROPOUT = Row(
    name="dropout",
    layer=Dropout,
    reference=dropout,
    signature="Dropout(ratio).forward(x, train_flg) -> x * mask",
    args=(
        Arg(name="dropout_ratio", to="init", values=lambda shapes, dtype, without: _RATIOS),
        Arg(name="x", grad="dx", domain=(-1e3, 1e3)),
        # the book defines backward only after a training-mode forward
        Arg(name="train_flg", to="keyword", values=lambda shapes, dtype, without: st.just(True)),
    ),
    shapes=lambda without: _SHAPES,
    capture=lambda layer: {"mask": np.asarray(layer.mask, dtype=float)},
)


@pytest.mark.oracle
@given(examples(DROPOUT))
def test_a_dropout_row_checks_the_books_dropout(example: Any) -> None:
    check_example(DROPOUT, Dropout, example)


@pytest.mark.oracle
def test_a_dropout_that_ignores_its_mask_is_caught() -> None:
    x = np.array([[1.5, -2.0, 3.0, 0.5]] * 8)
    example = Example(
        row="dropout",
        dtype="float64",
        values={"dropout_ratio": 0.5, "x": x, "train_flg": True},
        cotangents=(np.full(x.shape, 2.0),),
    )
    with pytest.raises(LayerMismatch) as caught:
        check_example(DROPOUT, DropoutIgnoresMask, example)
    assert [m.check for m in caught.value.failure.mismatches] == ["dx"]
    assert jnp.asarray(0.0).dtype == np.float32  # the check left JAX in its default 32-bit mode


def _row_with(shapes: Any) -> Row:
    return Row(
        name="twice",
        layer=object,
        reference=lambda x: 2 * x,
        signature="forward(x) -> 2 x",
        args=(Arg(name="x", grad="dx", domain=(-1.0, 1.0)),),
        shapes=shapes,
    )


def test_a_shape_pool_may_be_any_sequence_of_shape_dicts() -> None:
    row = _row_with([{"x": (2,), "out": (2,)}, {"x": (3, 1), "out": (3, 1)}])
    assert row.shapes == ({"x": (2,), "out": (2,)}, {"x": (3, 1), "out": (3, 1)})


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            5,
            re.escape(
                "shapes must be a pool (a tuple of shape dicts) or a function without -> strategy, got int"
            ),
        ),
        ((), "the shape pool is empty"),
        (({"x": (2,)},), r"pool entry \{'x': \(2,\)\} has no shape for \['out'\]"),
    ],
)
def test_a_malformed_shape_pool_is_refused_when_the_row_is_made(shapes: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _row_with(shapes)


@pytest.mark.oracle
@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("n", [1, 2])
def test_a_mask_that_a_fair_draw_repeats_often_is_not_called_stale(ratio: float, n: int) -> None:
    """A one-element mask kept with probability 0.9 is the same on nine calls in a row about four times
    in ten: the book's Dropout, which draws anew on every call, must not be called stale for it (the
    stale check weighs how often fresh instances draw that very mask; a CI run found this false alarm)."""
    example = Example(
        row="dropout",
        dtype="float64",
        values={"dropout_ratio": np.float64(ratio), "x": np.zeros(n), "train_flg": True},
        cotangents=(np.zeros(n),),
    )
    check_example(DROPOUT, Dropout, example)
