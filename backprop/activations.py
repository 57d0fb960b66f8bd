"""Activation layers: ReLU and sigmoid (book section 5.5)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, like, not_ready
from .functions import sigmoid

__all__ = ["Relu", "Sigmoid"]


class Relu:
    """out = max(x, 0).

    backward: dx = dout where x > 0, else 0 (relu'(0) = 0, as in jax.nn.relu).
    """

    def __init__(self) -> None:
        self.mask: NDArray[np.bool_] | None = None
        self._dtype: np.dtype[Any] | None = None

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        xa = np.asarray(x)
        self.mask = xa <= 0
        self._dtype = xa.dtype
        # np.where builds a new array, so the caller's x is never written to.
        return np.where(self.mask, np.zeros((), xa.dtype), xa)

    def backward(self, dout: ArrayLike) -> NDArray[Any]:
        if self.mask is None or self._dtype is None:
            raise not_ready("Relu")
        check_dout("Relu", dout, self.mask.shape)
        d = np.asarray(dout)
        # The book zeroes dout in place; np.where leaves the caller's dout untouched.
        return like(np.where(self.mask, np.zeros((), d.dtype), d), self._dtype)


class Sigmoid:
    """out = 1 / (1 + exp(-x)).

    backward: dx = dout * out * (1 - out).
    """

    def __init__(self) -> None:
        self.out: NDArray[np.floating[Any]] | None = None

    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: ArrayLike) -> NDArray[np.floating[Any]]:
        if self.out is None:
            raise not_ready("Sigmoid")
        check_dout("Sigmoid", dout, self.out.shape)
        dx: NDArray[Any] = np.asarray(dout) * self.out * (1 - self.out)
        return like(dx, self.out)
