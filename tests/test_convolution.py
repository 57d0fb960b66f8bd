"""The library's im2col, col2im, Convolution and Pooling: layout, adjointness, errors and conventions.

Their gradients are checked against JAX by the registry rows (the catalogue: tests/test_catalogue.py);
these tests pin what the rows cannot: the book's exact column layout, the errors, and the tie convention.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop import Col2im, Convolution, Im2col, Pooling, col2im, im2col


def test_im2col_matches_the_books_layout_on_a_hand_example() -> None:
    x = np.arange(2 * 2 * 3 * 3, dtype=np.float64).reshape(2, 2, 3, 3)
    col = im2col(x, 2, 2, stride=1, pad=0)
    assert col.shape == (2 * 2 * 2, 2 * 2 * 2)
    # row (n=0, y=0, x=1); columns (c, i, j): channel 0's window, then channel 1's
    np.testing.assert_array_equal(col[1], [1, 2, 4, 5, 10, 11, 13, 14])
    # the last row: sample 1, window (1, 1)
    np.testing.assert_array_equal(col[-1], [22, 23, 25, 26, 31, 32, 34, 35])


def test_im2col_pads_with_zeros_and_floors_an_uneven_stride() -> None:
    x = np.ones((1, 1, 5, 5))
    col = im2col(x, 3, 3, stride=2, pad=1)  # (5 + 2 - 3) // 2 + 1 = 3
    assert col.shape == (9, 9)
    np.testing.assert_array_equal(col[0], [0, 0, 0, 0, 1, 1, 0, 1, 1])
    assert im2col(np.ones((1, 1, 6, 6)), 3, 3, stride=2).shape == (4, 9)  # the last row and column unused


@given(
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(0, 2**32 - 1),
)
def test_col2im_is_the_adjoint_of_im2col(
    shape: tuple[int, int, int, int], fh: int, fw: int, stride: int, pad: int, seed: int
) -> None:
    """<im2col(x), c> == <x, col2im(c)> for every geometry that fits: col2im adds where windows overlap."""
    if fh > shape[2] + 2 * pad or fw > shape[3] + 2 * pad:
        return
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    col = im2col(x, fh, fw, stride, pad)
    c = rng.normal(size=col.shape)
    np.testing.assert_allclose(np.sum(col * c), np.sum(x * col2im(c, shape, fh, fw, stride, pad)), rtol=1e-10)


def test_im2col_never_returns_a_view_of_its_input() -> None:
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    col = im2col(x, 1, 1)
    col[0, 0] = 99.0
    assert x[0, 0, 0, 0] == 0.0


def test_a_filter_that_does_not_fit_names_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"a 4x4 filter does not fit an input of shape \(1, 1, 3, 3\)"):
        im2col(np.zeros((1, 1, 3, 3)), 4, 4)
    conv = Convolution(np.zeros((2, 1, 5, 5)), np.zeros(2))
    with pytest.raises(ValueError, match=r"Convolution.forward: a 5x5 filter does not fit .*\(1, 1, 4, 4\)"):
        conv.forward(np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Convolution(np.zeros((2, 1, 3)), np.zeros(2)), r"W of shape \(2, 1, 3\) must be 4-D"),
        (lambda: Convolution(np.zeros((2, 1, 3, 3)), np.zeros(3)), r"b of shape \(3,\) does not match"),
        (
            lambda: Convolution(np.zeros((2, 3, 1, 1)), np.zeros(2)).forward(np.zeros((1, 2, 4, 4))),
            r"x of shape \(1, 2, 4, 4\) has 2 channels but W of shape \(2, 3, 1, 1\) expects 3",
        ),
        (lambda: Pooling(2, 2, pad=2), r"pad 2 must be smaller than the 2x2 pool"),
        (lambda: Pooling(2, 2).forward(np.zeros((2, 2))), r"x of shape \(2, 2\) must be 4-D"),
        (lambda: im2col(np.zeros((1, 1, 3, 3)), 2, 2, stride=0), r"stride must be an integer >= 1"),
        (lambda: col2im(np.zeros((3, 4)), (1, 1, 3, 3), 2, 2), r"col of shape \(3, 4\) does not match"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_layer_and_shapes(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_backward_before_forward_is_a_clear_error() -> None:
    for layer in (Convolution(np.zeros((1, 1, 1, 1)), np.zeros(1)), Pooling(2, 2), Im2col(1, 1)):
        with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
            layer.backward(np.zeros((1, 1, 1, 1)))


def test_pooling_routes_a_tie_to_the_first_maximum_in_row_major_order() -> None:
    """The library's pinned convention (the book's argmax, and jax.lax.reduce_window's)."""
    pool = Pooling(2, 2, stride=2)
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    np.testing.assert_array_equal(pool.forward(x), [[[[3.0]]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[[5.0]]]])), [[[[0.0, 5.0], [0.0, 0.0]]]])


def test_pooling_pads_with_minus_infinity() -> None:
    """A border window of negative values returns their maximum, never the padding (the book's 0)."""
    pool = Pooling(2, 2, stride=2, pad=1)
    x = -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    out = pool.forward(x)
    np.testing.assert_array_equal(out, [[[[-1.0, -2.0], [-3.0, -4.0]]]])
    np.testing.assert_array_equal(pool.backward(np.ones_like(out)), np.ones_like(x))


def test_layers_keep_float32() -> None:
    x = np.ones((2, 1, 4, 4), dtype=np.float32)
    conv = Convolution(np.ones((3, 1, 2, 2), dtype=np.float32), np.zeros(3, dtype=np.float32), stride=2)
    out = conv.forward(x)
    assert out.dtype == np.float32
    assert conv.backward(np.ones(out.shape)).dtype == np.float32
    assert conv.dW is not None and conv.dW.dtype == np.float32
    pool = Pooling(2, 2)
    assert pool.backward(np.ones(pool.forward(x).shape)).dtype == np.float32


def test_im2col_and_col2im_layers_are_each_others_vjp() -> None:
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4))
    forward = Im2col(3, 2, stride=2, pad=1)
    col = forward.forward(x)
    back = Col2im(x.shape, 3, 2, stride=2, pad=1)
    np.testing.assert_array_equal(forward.backward(col), back.forward(col))
    np.testing.assert_array_equal(back.backward(x), col)


def test_pooling_keeps_an_infinite_dout_at_the_maximum_only() -> None:
    """The fast backward multiplies dout by 0/1 masks; inf * 0 would smear NaN over the window."""
    pool = Pooling(2, 2, stride=2)
    pool.forward(np.array([[[[1.0, 3.0], [2.0, 0.0]]]]))
    np.testing.assert_array_equal(pool.backward(np.array([[[[np.inf]]]])), [[[[0.0, np.inf], [0.0, 0.0]]]])


def _conv_pass(layer: Convolution, x: np.ndarray, dout: np.ndarray) -> tuple[np.ndarray, ...]:
    out = layer.forward(x)
    dx = layer.backward(dout)
    assert layer.dW is not None and layer.db is not None
    return out, dx, layer.dW, layer.db


def _by_the_book(
    w: np.ndarray, b: np.ndarray, stride: int, pad: int, x: np.ndarray, dout: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The book's im2col formulas, through this module's im2col and col2im (no work arrays)."""
    fn, _, fh, fw = w.shape
    col = im2col(x, fh, fw, stride, pad)
    d = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
    out = (col @ w.reshape(fn, -1).T + b).reshape(dout.shape[0], *dout.shape[2:], fn).transpose(0, 3, 1, 2)
    dx = col2im(d @ w.reshape(fn, -1), x.shape, fh, fw, stride, pad)
    return out, dx, (col.T @ d).T.reshape(w.shape), d.sum(axis=0)


@pytest.mark.parametrize(("channels", "stride", "pad"), [(3, 1, 1), (3, 1, 0), (3, 2, 1), (1, 1, 2)])
def test_kept_work_arrays_never_leak_into_results(channels: int, stride: int, pad: int) -> None:
    """Convolution keeps its work arrays between calls (convolution._kept). Alternating batch sizes must
    give the book's formulas, with zero borders still zero, and no result may share memory with a work
    array or change when the next call reuses them."""
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, channels, 3, 3)), rng.normal(size=4)
    layer = Convolution(w, b, stride, pad)
    kept: list[tuple[np.ndarray, ...]] = []
    for n in (3, 2, 3, 3):
        x = rng.normal(size=(n, channels, 7, 6))
        oh, ow = (7 + 2 * pad - 3) // stride + 1, (6 + 2 * pad - 3) // stride + 1
        dout = rng.normal(size=(n, 4, oh, ow))
        results = _conv_pass(layer, x, dout)
        for got, want in zip(results, _by_the_book(w, b, stride, pad, x, dout), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            assert not any(np.shares_memory(got, work) for _, work in layer._work.values())
        kept.append(tuple(r.copy() for r in results) + results)
    for saved in kept:  # what each call returned is untouched by the later calls
        for before, result in zip(saved[:4], saved[4:], strict=True):
            np.testing.assert_array_equal(before, result)


def test_kept_work_arrays_stay_within_the_workspace_and_are_not_pickled() -> None:
    import pickle

    from backprop._work import WORKSPACE_BYTES

    rng = np.random.default_rng(1)
    small = Convolution(rng.normal(size=(8, 4, 3, 3)), np.zeros(8))
    _conv_pass(small, rng.normal(size=(2, 4, 9, 9)), rng.normal(size=(2, 8, 7, 7)))
    assert set(small._work) >= {"col_t", "y", "dout", "grid", "products", "dimage"}
    big = Convolution(rng.normal(size=(16, 16, 3, 3)), np.zeros(16), pad=1)
    x = rng.normal(size=(40, 16, 28, 28))
    _conv_pass(big, x, rng.normal(size=(40, 16, 28, 28)))
    assert 0 < sum(a.nbytes for _, a in big._work.values()) <= WORKSPACE_BYTES
    assert "products" not in big._work  # 9*16 x 40*30*30 float64: 41 MB, made per call
    loaded = pickle.loads(pickle.dumps(small))
    assert loaded._work == {} and small._work
    np.testing.assert_array_equal(loaded.forward(np.ones((1, 4, 9, 9))), small.forward(np.ones((1, 4, 9, 9))))


def test_dx_is_new_even_when_its_transposed_view_is_contiguous() -> None:
    """A 1x1 filter on one sample makes the stride-1 dx view contiguous; it must still be a new array."""
    rng = np.random.default_rng(2)
    layer = Convolution(rng.normal(size=(2, 3, 1, 1)), np.zeros(2))
    x = rng.normal(size=(1, 3, 4, 4))
    layer.forward(x)
    dx = layer.backward(np.ones((1, 2, 4, 4)))
    saved = dx.copy()
    layer.forward(x)
    layer.backward(np.zeros((1, 2, 4, 4)))
    np.testing.assert_array_equal(dx, saved)


def test_an_infinite_weight_spreads_no_further_than_the_windows_it_is_in() -> None:
    w = np.ones((1, 2, 2, 2))
    w[0, 0, 0, 0] = np.inf
    layer = Convolution(w, np.zeros(1))
    layer.forward(np.ones((1, 2, 3, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dx = layer.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(dx[0, 0], [[np.inf, np.inf, 1], [np.inf, np.inf, 2], [1, 2, 1]])


def test_reassigned_filters_and_padding_get_fresh_zero_borders() -> None:
    """Kept arrays with zero borders are keyed by the geometry that decides where they are written."""
    rng = np.random.default_rng(3)
    w3, w1, b = rng.normal(size=(2, 3, 3, 3)), rng.normal(size=(2, 3, 1, 1)), rng.normal(size=2)
    layer = Convolution(w3, b, pad=1)
    for w, pad, side in ((w3, 1, 5), (w1, 1, 5), (w3, 1, 5), (w3, 2, 3), (w3, 1, 5)):
        layer.W, layer.pad = w, pad
        x = rng.normal(size=(2, 3, side, side))
        oh = side + 2 * pad - w.shape[2] + 1
        dout = rng.normal(size=(2, 2, oh, oh))
        results = _conv_pass(layer, x, dout)
        for got, want in zip(results, _by_the_book(w, b, 1, pad, x, dout), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_shallow_copy_keeps_its_own_column_matrix() -> None:
    rng = np.random.default_rng(4)
    layer = Convolution(rng.normal(size=(2, 3, 3, 3)), np.zeros(2))
    x, dout = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(2, 2, 3, 3))
    layer.forward(x)
    twin = copy.copy(layer)
    layer.forward(rng.normal(size=(2, 3, 5, 5)))
    twin.backward(dout)
    assert twin.dW is not None
    np.testing.assert_allclose(twin.dW, _by_the_book(layer.W, layer.b, 1, 0, x, dout)[2], rtol=1e-12)


def test_integer_douts_sum_without_wrapping_around() -> None:
    layer = Convolution(np.ones((1, 1, 1, 1), dtype=np.uint8), np.zeros(1, dtype=np.float64))
    layer.forward(np.ones((1, 1, 20, 15), dtype=np.uint8))
    layer.backward(np.ones((1, 1, 20, 15), dtype=np.uint8))
    assert layer.db is not None and layer.db[0] == 300.0
