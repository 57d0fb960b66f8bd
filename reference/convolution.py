"""References for Convolution, Pooling, im2col and col2im, from JAX's own primitives.

``convolution`` is ``jax.lax.conv_general_dilated`` and ``pooling`` is ``jax.lax.reduce_window`` with a -inf
initial value and -inf padding. ``im2col`` is a gather by index arrays and ``col2im`` a scatter-add
(``.at[].add``); neither walks the filter positions as the NumPy code does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


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
