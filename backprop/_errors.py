"""Shared error types and the small shape/dtype helpers every layer uses.

Kept in one private module so that every layer words its errors the same way:
``"<Layer>.<method>: <what> of shape (..) ..."``.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BackwardBeforeForwardError",
    "as_operand",
    "broadcast_shape",
    "check_dout",
    "float_dtype",
    "like",
    "not_ready",
    "unbroadcast",
]

Shape = tuple[int, ...]
G = TypeVar("G")  # a gradient: an array, or a scalar where Python arithmetic is kept


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
    """The dtype a gradient w.r.t. ``value`` (an array, a NumPy or Python number, or a dtype) must have,
    or None when there is none to keep.

    Only floating and complex dtypes are one: Python numbers keep Python arithmetic, and integer or
    boolean arrays have no meaningful gradient dtype.
    """
    if isinstance(value, np.dtype):
        dtype: np.dtype[Any] = value
    elif isinstance(value, np.ndarray | np.generic):
        dtype = value.dtype
    else:
        return None
    return dtype if dtype.kind in "fc" else None


def like(grad: G, *primals: object) -> G:
    """``grad`` cast to its primal's dtype. The rule every layer keeps: a gradient has its primal's dtype
    and shape (the shape is the layer's own arithmetic; this sets the dtype), so a float32 parameter gets
    a float32 gradient even when dout arrives as float64, and a float64 one is never rounded.

    The first of ``primals`` (arrays, NumPy or Python numbers, dtypes) that has a gradient dtype
    (``float_dtype``) gives it: a later primal stands in for an integer one (an integer x's dx takes W's
    dtype), and a dtype may close the list as the default. With none, ``grad`` is returned as computed.
    An array of the right dtype is returned as it is (no copy), and a scalar stays a scalar (its static
    type is ``grad``'s: only the dtype, a run-time property, changes).
    """
    for primal in primals:
        dtype = float_dtype(primal)
        if dtype is not None:
            break
    else:
        return grad
    g: Any = grad
    if isinstance(g, np.ndarray):
        g = g.astype(dtype, copy=False)
    elif np.result_type(g) != dtype:  # a Python or NumPy scalar stays a scalar, not a 0-d array
        g = dtype.type(g)
    return cast(G, g)
