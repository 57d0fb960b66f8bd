"""References for Convolution, Pooling, im2col and col2im, from JAX's own primitives.

``convolution`` is ``jax.lax.conv_general_dilated`` and ``pooling`` is ``jax.lax.reduce_window`` with a -inf
initial value and -inf padding. ``im2col`` is a gather by index arrays and ``col2im`` a scatter-add
(``.at[].add``); neither walks the filter positions as the NumPy code does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap


def _index(size: int, window: int, stride: int, pad: int) -> jax.Array:
    """(out, window) indices into the padded axis: out_index * stride + window_index."""
    out = (size + 2 * pad - window) // stride + 1
    return jnp.arange(out)[:, None] * stride + jnp.arange(window)[None, :]


def _pad(x: jax.Array, pad: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def im2col(x: jax.Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> jax.Array:
    """col[(n, y, x), (c, i, j)] = padded[n, c, y * stride + i, x * stride + j]."""
    n, c, h, w = x.shape
    rows, cols = _index(h, filter_h, stride, pad), _index(w, filter_w, stride, pad)
    # padded[:, :, rows[y, i][:, :, None, None], cols[x, j][None, None]] -> (N, C, oh, fh, ow, fw)
    picked = _pad(x, pad)[:, :, rows[:, :, None, None], cols[None, None, :, :]]
    oh, ow = rows.shape[0], cols.shape[0]
    return jnp.transpose(picked, (0, 2, 4, 1, 3, 5)).reshape(n * oh * ow, c * filter_h * filter_w)


def col2im(
    col: jax.Array,
    input_shape: tuple[int, int, int, int],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> jax.Array:
    """Every row of col scatter-added into the padded image at its window's indices, then cropped."""
    n, c, h, w = input_shape
    rows, cols = _index(h, filter_h, stride, pad), _index(w, filter_w, stride, pad)
    oh, ow = rows.shape[0], cols.shape[0]
    values = jnp.transpose(col.reshape(n, oh, ow, c, filter_h, filter_w), (0, 3, 1, 4, 2, 5))
    img = jnp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    img = img.at[:, :, rows[:, :, None, None], cols[None, None, :, :]].add(values)
    return img[:, :, pad : pad + h, pad : pad + w]


def convolution(x: jax.Array, W: jax.Array, b: jax.Array, stride: int = 1, pad: int = 0) -> jax.Array:
    """Cross-correlation of NCHW x with OIHW W, plus b per output channel."""
    out = jax.lax.conv_general_dilated(
        x,
        W,
        window_strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return out + b[None, :, None, None]


def pooling(x: jax.Array, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> jax.Array:
    """The maximum of every pool_h x pool_w window, padding never winning."""
    out: jax.Array = jax.lax.reduce_window(
        x,
        -jnp.inf,
        jax.lax.max,
        window_dimensions=(1, 1, pool_h, pool_w),
        window_strides=(1, 1, stride, stride),
        padding=((0, 0), (0, 0), (pad, pad), (pad, pad)),
    )
    return out


# ---- the book's computational graphs (issue 20): the same outputs, node by node -------------------------

BEFORE_TRANSPOSE = "out (before the transpose)"
"""The node the book's forward also calls ``out``: its 2-D result, before ``.reshape(...).transpose(0, 3, 1,
2)`` gives the layer's output (the node ``out``)."""


def convolution_graph(
    tap: Tap, x: jax.Array, W: jax.Array, b: jax.Array, stride: int = 1, pad: int = 0
) -> jax.Array:
    """``convolution`` as the book's Convolution computes it: ``col = im2col(x)`` (N*oh*ow, C*FH*FW),
    ``col_W = W.reshape(FN, -1).T``, then ``col @ col_W + b`` (the node ``out (before the transpose)``),
    reshaped and transposed to (N, FN, oh, ow). The gradients at them are the book's ``dcol``, ``dW``
    before its transpose and reshape, and its ``dout`` once transposed and reshaped to (-1, FN)."""
    fn, _, fh, fw = W.shape
    n = x.shape[0]
    col = tap("col", im2col(x, fh, fw, stride, pad))
    col_W = tap("col_W", jnp.reshape(W, (fn, -1)).T)
    out = tap(BEFORE_TRANSPOSE, jnp.matmul(col, col_W, precision=jax.lax.Precision.HIGHEST) + b)
    oh = (x.shape[2] + 2 * pad - fh) // stride + 1
    ow = (x.shape[3] + 2 * pad - fw) // stride + 1
    return jnp.transpose(jnp.reshape(out, (n, oh, ow, fn)), (0, 3, 1, 2))


def pooling_graph(
    tap: Tap, x: jax.Array, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0
) -> jax.Array:
    """``pooling`` as the book's Pooling computes it: ``col`` (N*oh*ow*C, pool_h*pool_w), one window a row
    (padded with -inf, where the book pads with 0: padding never wins), ``arg_max`` (an index: a node
    without a gradient), ``out (before the transpose)`` the maximum at ``arg_max``, reshaped and transposed
    to (N, C, oh, ow). The whole dout goes to the first maximum of a window, as the book's argmax routes
    it. The gradient at ``col`` is the book's ``dmax``; at the node before the transpose, its ``dout``
    once transposed."""
    n, c, h, w = x.shape
    padded = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-jnp.inf)
    col = tap("col", jnp.reshape(im2col(padded, pool_h, pool_w, stride, 0), (-1, pool_h * pool_w)))
    arg_max = tap("arg_max", jnp.argmax(col, axis=1))
    out = tap(BEFORE_TRANSPOSE, jnp.take_along_axis(col, arg_max[:, None], axis=1)[:, 0])
    oh = (h + 2 * pad - pool_h) // stride + 1
    ow = (w + 2 * pad - pool_w) // stride + 1
    return jnp.transpose(jnp.reshape(out, (n, oh, ow, c)), (0, 3, 1, 2))
