"""Multiplication and addition nodes of a computational graph (book section 5.4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._errors import as_operand, broadcast_shape, check_dout, float_dtype, like, not_ready, unbroadcast

__all__ = ["AddLayer", "MulLayer"]

# Python numbers, NumPy scalars or arrays. Left as Any on purpose: Python numbers must
# keep Python arithmetic (int stays int), which no single NumPy type expresses.
Operand = Any


class MulLayer:
    """out = x * y (with NumPy broadcasting).

    backward: dx = dout * y, dy = dout * x, each summed back to its input's shape.
    """

    def __init__(self) -> None:
        self.x: Operand = None
        self.y: Operand = None
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: Operand, y: Operand) -> Operand:
        x, y = as_operand(x), as_operand(y)
        out_shape = broadcast_shape("MulLayer", np.shape(x), np.shape(y))
        self.x, self.y, self._out_shape = x, y, out_shape
        return x * y

    def backward(self, dout: Operand) -> tuple[Operand, Operand]:
        if self._out_shape is None:
            raise not_ready("MulLayer")
        check_dout("MulLayer", dout, self._out_shape)
        dx = unbroadcast(dout * self.y, np.shape(self.x))
        dy = unbroadcast(dout * self.x, np.shape(self.y))
        return like(dx, self.x), like(dy, self.y)


class AddLayer:
    """out = x + y (with NumPy broadcasting).

    backward: dx = dout, dy = dout, each summed back to its input's shape (and copied,
    so neither gradient aliases the caller's dout).
    """

    def __init__(self) -> None:
        # The book's AddLayer keeps nothing; shapes and dtypes are needed to unbroadcast.
        self._x_shape: tuple[int, ...] = ()
        self._y_shape: tuple[int, ...] = ()
        self._x_dtype: np.dtype[Any] | None = None
        self._y_dtype: np.dtype[Any] | None = None
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: Operand, y: Operand) -> Operand:
        x, y = as_operand(x), as_operand(y)
        out_shape = broadcast_shape("AddLayer", np.shape(x), np.shape(y))
        self._x_shape, self._y_shape = np.shape(x), np.shape(y)
        self._x_dtype, self._y_dtype = float_dtype(x), float_dtype(y)
        self._out_shape = out_shape
        return x + y

    def backward(self, dout: Operand) -> tuple[Operand, Operand]:
        if self._out_shape is None:
            raise not_ready("AddLayer")
        check_dout("AddLayer", dout, self._out_shape)
        # `dout * 1` (the book's form) builds a fresh array for each gradient.
        dx = unbroadcast(dout * 1, self._x_shape)
        dy = unbroadcast(dout * 1, self._y_shape)
        return like(dx, self._x_dtype), like(dy, self._y_dtype)
