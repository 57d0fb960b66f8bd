"""Numerically stable versions of the book's helper functions.

None of these may overflow, divide by zero or produce NaN for finite inputs of any
size, so every exponent is taken of a non-positive number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["cross_entropy_error", "log_softmax", "sigmoid", "softmax"]

FloatArray = NDArray[np.floating[Any]]


def as_float(x: ArrayLike) -> FloatArray:
    """``x`` as a floating array: float inputs keep their dtype, everything else becomes float64."""
    a = np.asarray(x)
    if a.dtype.kind not in "f":
        a = a.astype(np.float64)
    return a


def _check_has_classes(name: str, x: FloatArray) -> None:
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name}: x of shape {x.shape} has no class axis to normalise over")


def softmax(x: ArrayLike) -> FloatArray:
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x), over the last axis.

    Subtracting the max leaves the result unchanged but keeps every exponent <= 0.
    """
    a = as_float(x)
    _check_has_classes("softmax", a)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    y: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return y


def log_softmax(x: ArrayLike) -> FloatArray:
    """log y_i = (x_i - max x) - log sum_j exp(x_j - max x), over the last axis.

    The sum contains exp(0) = 1, so its log is finite and >= 0: no log(0) ever.
    """
    a = as_float(x)
    _check_has_classes("log_softmax", a)
    shifted = a - a.max(axis=-1, keepdims=True)
    logp: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return logp


def sigmoid(x: ArrayLike) -> FloatArray:
    """sigmoid(x) = 1 / (1 + exp(-x)), evaluated via e = exp(-|x|) so nothing overflows.

    x >= 0: 1 / (1 + e);  x < 0: e / (1 + e).
    """
    a = as_float(x)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def parse_targets(name: str, x: FloatArray, t: ArrayLike) -> tuple[FloatArray, NDArray[Any]]:
    """Normalise the book's (x, t) conventions to a batch: returns ``(x2d, t2d)``.

    ``t2d`` is either (N,) integer labels in [0, C) or an (N, C) target in x's dtype
    (one-hot, or any per-row weights); callers tell them apart by ``t2d.ndim``.
    A 1-D x of shape (C,) is a batch of one, with t either (C,) one-hot or a single
    label of shape () or (1,).
    """
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: x of shape {x.shape} must be (N, C) or (C,)")
    x2d = x.reshape(1, -1) if x.ndim == 1 else x
    n, c = x2d.shape
    if n == 0 or c == 0:
        raise ValueError(f"{name}: x of shape {x.shape} is empty; the mean loss is undefined")
    ta = np.asarray(t)
    if ta.shape == x.shape:
        return x2d, ta.reshape(n, c).astype(x.dtype, copy=False)
    label_shapes = [(), (1,)] if x.ndim == 1 else [(n,)]
    if ta.shape not in label_shapes:
        raise ValueError(
            f"{name}: t of shape {ta.shape} does not match x of shape {x.shape}; expected "
            f"labels of shape {label_shapes[-1]} or one-hot of shape {x.shape}"
        )
    if ta.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels t must be integers, got dtype {ta.dtype} (shape {ta.shape})")
    labels = ta.reshape(n)
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        raise ValueError(
            f"{name}: label {labels[bad][0]} in t of shape {ta.shape} is outside [0, {c}) "
            f"for x of shape {x.shape}"
        )
    return x2d, labels


def cross_entropy_error(y: ArrayLike, t: ArrayLike) -> np.floating[Any]:
    """E = -(1/N) sum_n sum_k t_nk log y_nk, with y probabilities (e.g. a softmax output).

    t may be (N,) labels or (N, C) one-hot; a 1-D y is a batch of one. y is clipped at
    the dtype's smallest normal number instead of the book's ``+ 1e-7``, so y = 0 gives
    a large but finite loss and y = 1 gives exactly 0.
    """
    ya = as_float(y)
    y2d, t2d = parse_targets("cross_entropy_error", ya, t)
    log_y = np.log(np.maximum(y2d, np.finfo(ya.dtype).tiny))
    n = y2d.shape[0]
    return ya.dtype.type(-batch_total(log_y, t2d) / n)


def batch_total(logp: FloatArray, t2d: NDArray[Any]) -> Any:
    """sum_n sum_k t_nk logp_nk for labels or an (N, C) target.

    Rows are reduced first and the N row values summed the same way in both cases, so
    labels and the equivalent one-hot give bit-identical losses.
    """
    n = logp.shape[0]
    rows = logp[np.arange(n), t2d] if t2d.ndim == 1 else (t2d * logp).sum(axis=1)
    return rows.sum()
