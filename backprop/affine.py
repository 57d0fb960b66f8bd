"""Fully connected (affine) layer (book section 5.6)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, like, not_ready

__all__ = ["Affine"]

Array = NDArray[Any]


class Affine:
    """out = x @ W + b, with x (N, d1, d2, ...) flattened to (N, d1*d2*...) first.

    backward: dx = dout @ W.T (reshaped back to x's shape), dW = x.T @ dout,
    db = sum of dout over the batch.

    W and b are stored by reference: optimizers update them in place and this layer
    must see those updates.
    """

    def __init__(self, W: Array, b: Array) -> None:
        W = W if isinstance(W, np.ndarray) else np.asarray(W)
        b = b if isinstance(b, np.ndarray) else np.asarray(b)
        if W.ndim != 2:
            raise ValueError(f"Affine.__init__: W must be 2-D, got shape {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(
                f"Affine.__init__: b of shape {b.shape} does not match W of shape {W.shape}; "
                f"expected ({W.shape[1]},)"
            )
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        xa = np.asarray(x)
        if xa.ndim < 2:
            raise ValueError(
                f"Affine.forward: x of shape {xa.shape} needs a batch axis, i.e. shape (N, ...) "
                f"with W of shape {self.W.shape}"
            )
        # math.prod rather than -1 so an empty batch (N = 0) still reshapes.
        x2d = xa.reshape(xa.shape[0], math.prod(xa.shape[1:]))
        if x2d.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"Affine.forward: x of shape {xa.shape} flattens to {x2d.shape} "
                f"but W has shape {self.W.shape}"
            )
        self.original_x_shape = xa.shape
        self.x = x2d
        out: Array = x2d @ self.W + self.b
        return out

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None or self.original_x_shape is None:
            raise not_ready("Affine")
        check_dout("Affine", dout, (self.x.shape[0], self.W.shape[1]))
        d = np.asarray(dout)
        self.dW = like(self.x.T @ d, self.W)
        self.db = like(d.sum(axis=0), self.b)
        dx: Array = d @ self.W.T
        return like(dx, self.x).reshape(self.original_x_shape)
