"""Numerical gradients by central differences (book section 4.4), for checking and for teaching."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_gradient"]

H = 1e-4


def numerical_gradient(f: Callable[[Any], Any], x: ArrayLike, h: float = H) -> NDArray[np.float64]:
    """df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h for every element i of x.

    A float array is perturbed in place, one element at a time, because the book's networks read their
    parameters through closures (``lambda W: net.loss(x, t)``); each element is restored bit for bit,
    even when ``f`` raises, so ``x`` is unchanged afterwards. An integer array (or a list) cannot hold
    ``x + h``: ``f`` then receives a float64 copy instead, and ``x`` is never written.
    """
    arr = x if isinstance(x, np.ndarray) and x.dtype.kind in "fc" else np.array(x, dtype=np.float64)
    grad = np.zeros(arr.shape, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        original = arr[idx].copy()
        try:
            arr[idx] = original + h
            above = float(f(arr))
            arr[idx] = original - h
            below = float(f(arr))
        finally:
            arr[idx] = original
        grad[idx] = (above - below) / (2 * h)
    return grad
