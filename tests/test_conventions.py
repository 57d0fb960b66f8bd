"""Conventions at kinks and ties, each pinned by its own example, for the layer and for the reference."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest

import backprop
import reference
from backprop.verify import LayerMismatch, Options, check_example, get_row
from backprop.verify.report import Example


def _grad_at(fn: Any, x: float) -> float:
    with reference.x64():
        return float(jax.grad(fn)(x))


@pytest.mark.oracle
def test_relu_derivative_at_zero_is_zero_in_the_reference() -> None:
    assert _grad_at(reference.relu, 0.0) == 0.0
    assert _grad_at(reference.relu, -0.0) == 0.0


def test_relu_derivative_at_zero_is_zero_in_the_layer() -> None:
    layer = backprop.Relu()
    layer.forward(np.array([-1.0, 0.0, -0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.array([3.0, 3.0, 3.0, 3.0])), [0.0, 0.0, 0.0, 3.0])


class ReluOneAtZero(backprop.Relu):
    """relu'(0) = 1: the other one-sided derivative, a valid subgradient but not the project's convention."""

    def backward(self, dout: Any) -> Any:
        return np.where(self.mask & (self.x_ != 0), 0.0, dout)

    def forward(self, x: Any) -> Any:
        self.x_ = np.asarray(x)
        return super().forward(x)


_AT_ZERO = Example(
    row="relu", dtype="float64", values={"x": np.array([0.0, 1.5])}, cotangents=(np.array([2.0, 3.0]),)
)


@pytest.mark.oracle
def test_the_strict_oracle_rejects_the_other_relu_convention_at_zero() -> None:
    check_example("relu", backprop.Relu, _AT_ZERO, Options(strict=True))
    with pytest.raises(LayerMismatch) as caught:
        check_example("relu", ReluOneAtZero, _AT_ZERO, Options(strict=True))
    (mismatch,) = caught.value.failure.mismatches
    assert mismatch.check == "dx" and mismatch.index == (0,)
    assert (mismatch.worst_expected, mismatch.worst_actual) == (0.0, 2.0)
    assert mismatch.diagnosis == "kink"


@pytest.mark.oracle
def test_the_other_relu_convention_passes_by_default_with_a_note_naming_both() -> None:
    """Any value in [0, 1] is a valid subgradient at 0: a user's layer passes, and is told its choice."""
    measured = check_example("relu", ReluOneAtZero, _AT_ZERO)
    assert measured.notes == [
        "dx: at the kink of x your layer uses relu'(0) = 1; the reference uses relu'(0) = 0, as jax.nn.relu "
        "differentiates; any value in [0, 1] is a valid subgradient. Both are valid subgradients (--strict "
        "makes this a failure)."
    ]
    assert check_example("relu", backprop.Relu, _AT_ZERO).notes == []


def test_the_relu_row_declares_its_convention() -> None:
    row = get_row("relu")
    assert row.conventions == (
        "relu'(0) = 0, as jax.nn.relu differentiates; any value in [0, 1] is a valid subgradient",
    )
    assert [a.kinks for a in row.args] == [(0.0,)] and row.subgradient is not None


@pytest.mark.oracle
def test_softmax_with_loss_averages_over_the_batch() -> None:
    """Convention: the loss is the mean over the batch, so dx carries 1/N (the book's choice)."""
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    with reference.x64():
        single = float(reference.softmax_with_loss(x[:1], np.array([2])))
        double = float(reference.softmax_with_loss(x, np.array([2, 2])))
        g = np.asarray(jax.grad(reference.softmax_with_loss)(x, np.array([2, 2])))
    assert double == pytest.approx(single)
    layer = backprop.SoftmaxWithLoss()
    assert layer.forward(x, np.array([2, 2])) == pytest.approx(single)
    np.testing.assert_allclose(layer.backward(1.0), g, rtol=1e-12)
    y = np.exp(x[0]) / np.exp(x[0]).sum()
    np.testing.assert_allclose(g[0], (y - [0, 0, 1]) / 2, rtol=1e-12)
