"""Softmax followed by cross-entropy loss, fused into one layer (book section 5.6.3)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, not_ready
from .functions import as_float, batch_total, log_softmax, parse_targets, softmax

__all__ = ["SoftmaxWithLoss"]

FloatArray = NDArray[np.floating[Any]]


class SoftmaxWithLoss:
    """loss = -(1/N) sum_n sum_k t_nk log softmax(x_n)_k.

    t is (N,) integer labels or an (N, C) one-hot/target array; a 1-D x is one sample.
    backward: dx = dout * (y * rowsum(t) - t) / N with y = softmax(x), which is the
    book's (y - t) / N for one-hot t and dout = 1.
    """

    def __init__(self) -> None:
        self.loss: np.floating[Any] | None = None
        self.y: FloatArray | None = None
        self.t: ArrayLike | None = None
        self._t2d: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        xa = as_float(x)
        x2d, t2d = parse_targets("SoftmaxWithLoss.forward", xa, t)
        n = x2d.shape[0]
        # A stable log-softmax instead of the book's log(y + 1e-7): exact, and finite.
        logp = log_softmax(x2d)
        total = batch_total(logp, t2d)
        self.t, self._t2d = t, t2d
        self.y = softmax(xa)
        self.loss = xa.dtype.type(-total / n)
        return self.loss

    def backward(self, dout: ArrayLike = 1) -> FloatArray:
        if self.y is None or self._t2d is None:
            raise not_ready("SoftmaxWithLoss")
        check_dout("SoftmaxWithLoss", dout, ())
        y2d = self.y.reshape(self._t2d.shape[0], -1)
        n = y2d.shape[0]
        if self._t2d.ndim == 1:
            dx = y2d.copy()
            dx[np.arange(n), self._t2d] -= 1
        else:
            # Rows of t need not sum to 1 (soft or unnormalised targets): d/dx of
            # -sum t log softmax(x) is softmax(x) * sum(t) - t.
            dx = y2d * self._t2d.sum(axis=1, keepdims=True) - self._t2d
        # Casting dout first keeps a float64 dout from promoting a float32 dx.
        scale = self.y.dtype.type(np.asarray(dout)) / self.y.dtype.type(n)
        return (dx * scale).reshape(self.y.shape)
