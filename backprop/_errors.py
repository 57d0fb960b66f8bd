"""Shared error types and the small shape/dtype helpers every layer uses.

Kept in one private module so that every layer words its errors the same way:
``"<Layer>.<method>: <what> of shape (..) ..."``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BackwardBeforeForwardError",
    "as_operand",
    "broadcast_shape",
    "cast_like",
    "check_dout",
    "float_dtype",
    "not_ready",
    "unbroadcast",
]

Shape = tuple[int, ...]


class BackwardBeforeForwardError(RuntimeError):
    """Raised when ``backward()`` runs before any ``forward()`` has cached its inputs."""


def not_ready(layer: str) -> BackwardBeforeForwardError:
    """Build (not raise) the error so call sites read ``raise not_ready("Relu")``."""
    return BackwardBeforeForwardError(f"{layer}.backward() was called before forward()")


def as_operand(value: Any) -> Any:
    """Leave Python numbers and NumPy values alone; turn anything else (lists...) into an array.

    Python numbers must survive untouched so the book's shopping examples print
    ``200`` and ``110.00000000000001`` exactly as plain Python arithmetic does.
    """
    if isinstance(value, int | float | complex | np.ndarray | np.generic):
        return value
    return np.asarray(value)


def broadcast_shape(layer: str, x_shape: Shape, y_shape: Shape) -> Shape:
    """Result shape of ``x op y``, or a ValueError that names the layer and both shapes."""
    try:
        return tuple(np.broadcast_shapes(x_shape, y_shape))
    except ValueError:
        raise ValueError(
            f"{layer}.forward: x of shape {x_shape} and y of shape {y_shape} cannot be broadcast together"
        ) from None


def check_dout(layer: str, dout: Any, out_shape: Shape) -> None:
    """Reject a dout that is not shaped like the forward output (a silent broadcast would hide bugs)."""
    dout_shape = np.shape(dout)
    if dout_shape != out_shape:
        raise ValueError(
            f"{layer}.backward: dout of shape {dout_shape} does not match "
            f"the forward output of shape {out_shape}"
        )


def unbroadcast(grad: Any, shape: Shape) -> Any:
    """Sum ``grad`` back down to ``shape``, undoing NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where the input had
    size 1 are summed with keepdims. Nothing happens when the shapes already agree,
    so Python scalars stay Python scalars.
    """
    if np.shape(grad) == shape:
        return grad
    g: NDArray[Any] = np.asarray(grad)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if kept:
        g = g.sum(axis=kept, keepdims=True)
    return g


def float_dtype(value: Any) -> np.dtype[Any] | None:
    """The dtype a gradient w.r.t. ``value`` must have, or None when there is none to keep.

    Only NumPy floating/complex values have one: Python numbers keep Python
    arithmetic, and integer arrays have no meaningful gradient dtype.
    """
    if isinstance(value, np.ndarray | np.generic) and value.dtype.kind in "fc":
        return value.dtype
    return None


def cast_like(grad: Any, dtype: np.dtype[Any] | None) -> Any:
    """Cast ``grad`` to ``dtype`` so float32 primals get float32 gradients (no float64 creep)."""
    if dtype is None or np.result_type(grad) == dtype:
        return grad
    if isinstance(grad, np.ndarray):
        return grad.astype(dtype)
    # Python or NumPy scalar: keep it a scalar rather than a 0-d array.
    return dtype.type(grad)
