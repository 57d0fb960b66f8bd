"""Stable softmax / log_softmax / sigmoid / cross_entropy_error, checked by hand."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from backprop import cross_entropy_error, log_softmax, sigmoid, softmax


@pytest.fixture
def strict() -> Iterator[None]:
    """Turn the NumPy warnings that signal instability into errors."""
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        yield


# ---------------------------------------------------------------- softmax


def test_softmax_hand_example() -> None:
    # exp([0, log 2, log 5]) = [1, 2, 5], which sums to 8.
    y = softmax(np.array([0.0, math.log(2), math.log(5)]))
    np.testing.assert_allclose(y, [1 / 8, 2 / 8, 5 / 8], rtol=1e-12)


def test_softmax_is_shift_invariant_and_uniform_on_equal_inputs() -> None:
    np.testing.assert_allclose(softmax(np.full((2, 4), 7.0)), np.full((2, 4), 0.25), rtol=1e-12)


def test_softmax_rows_sum_to_one_over_last_axis() -> None:
    x = np.random.default_rng(0).normal(scale=5.0, size=(3, 4, 5))
    y = softmax(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((3, 4)), rtol=1e-12)
    assert (y > 0).all()


def test_softmax_keeps_float32() -> None:
    assert softmax(np.array([[1.0, 2.0]], dtype=np.float32)).dtype == np.float32


def test_softmax_of_a_0d_value_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"softmax: x of shape \(\)"):
        softmax(np.array(1.0))


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("big", [1e3, 1e4])
def test_softmax_is_stable_for_huge_inputs(big: float) -> None:
    np.testing.assert_array_equal(softmax(np.array([big, 0.0])), [1.0, 0.0])
    np.testing.assert_array_equal(softmax(np.array([-big, 0.0])), [0.0, 1.0])
    y = softmax(np.array([[big, big, -big], [-big, -big, -big]]))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-12)


# ---------------------------------------------------------------- log_softmax


def test_log_softmax_matches_log_of_softmax() -> None:
    x = np.random.default_rng(1).normal(scale=3.0, size=(4, 6))
    np.testing.assert_allclose(log_softmax(x), np.log(softmax(x)), rtol=1e-12, atol=1e-12)


def test_log_softmax_hand_example() -> None:
    x = np.array([0.0, math.log(2), math.log(5)])
    np.testing.assert_allclose(log_softmax(x), np.log([1 / 8, 2 / 8, 5 / 8]), rtol=1e-12)


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("big", [1e3, 1e4])
def test_log_softmax_is_finite_for_huge_inputs(big: float) -> None:
    logp = log_softmax(np.array([big, 0.0, -big]))
    # log(1 + e^-big + e^-2big) rounds to 0, so the entries are exactly 0, -big, -2big.
    np.testing.assert_array_equal(logp, [0.0, -big, -2 * big])


# ---------------------------------------------------------------- sigmoid


def test_sigmoid_hand_values() -> None:
    np.testing.assert_allclose(
        sigmoid(np.array([0.0, math.log(3), -math.log(3)])), [0.5, 0.75, 0.25], rtol=1e-12
    )


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("big", [1e3, 1e4])
def test_sigmoid_saturates_without_warnings(big: float) -> None:
    y = sigmoid(np.array([big, -big]))
    assert y[0] == 1.0
    assert y[1] == 0.0
    assert not np.isnan(y).any()


@pytest.mark.usefixtures("strict")
def test_sigmoid_float32_is_stable_and_keeps_dtype() -> None:
    y = sigmoid(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32))
    assert y.dtype == np.float32
    assert y[0] == 0.0
    assert y[2] == 0.5
    assert y[-1] == 1.0


# ---------------------------------------------------------------- cross_entropy_error


def test_cross_entropy_error_hand_example_labels_and_one_hot() -> None:
    y = np.array([[0.1, 0.6, 0.3], [0.8, 0.1, 0.1]])
    expected = -(math.log(0.6) + math.log(0.8)) / 2
    assert cross_entropy_error(y, np.array([1, 0])) == pytest.approx(expected, rel=1e-12)
    one_hot = np.array([[0, 1, 0], [1, 0, 0]])
    assert cross_entropy_error(y, one_hot) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_error_treats_1d_y_as_a_batch_of_one() -> None:
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    # The book's own example: -log 0.6 = 0.5108...
    assert cross_entropy_error(y, t) == pytest.approx(-math.log(0.6), rel=1e-12)
    assert cross_entropy_error(y, np.array(2)) == pytest.approx(-math.log(0.6), rel=1e-12)


@pytest.mark.usefixtures("strict")
def test_cross_entropy_error_is_finite_when_y_contains_zero() -> None:
    loss = cross_entropy_error(np.array([[0.0, 1.0]]), np.array([0]))
    assert np.isfinite(loss)
    assert loss == pytest.approx(-math.log(np.finfo(np.float64).tiny), rel=1e-12)
    # A certain, correct prediction costs exactly nothing (the book's +1e-7 would not).
    assert cross_entropy_error(np.array([[0.0, 1.0]]), np.array([1])) == 0.0
    assert cross_entropy_error(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])) == 0.0


def test_cross_entropy_error_keeps_float32() -> None:
    loss = cross_entropy_error(np.array([[0.25, 0.75]], dtype=np.float32), np.array([[0, 1]]))
    assert isinstance(loss, np.float32)
    assert loss == pytest.approx(-math.log(0.75), rel=1e-6)


@pytest.mark.parametrize(
    ("t", "pattern"),
    [
        (np.array([0, 1, 0]), r"cross_entropy_error: t of shape \(3,\) does not match x of shape \(2, 3\)"),
        (np.array([0, 3]), r"cross_entropy_error: label 3 in t of shape \(2,\) is outside \[0, 3\)"),
        (np.array([0.0, 1.0]), r"cross_entropy_error: labels t must be integers, got dtype float64"),
    ],
)
def test_cross_entropy_error_rejects_bad_targets(t: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        cross_entropy_error(np.full((2, 3), 1 / 3), t)
