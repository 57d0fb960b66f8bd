"""References for Dropout and the two batch normalizations (book 1, chapter 6).

Written from JAX's own reductions (``jnp.mean``, ``jnp.var``) and ``jax.lax.rsqrt``; ``jax.vjp`` derives
every gradient, so nothing here repeats the hand-derived backward passes of ``backprop.normalization``.

Batch normalization follows the book's conventions: eps = 10e-7 inside the square root, the biased
(divide by N) batch variance, and running statistics updated as ``momentum * old + (1 - momentum) * new``.
In test mode the running statistics are constants: no gradient flows into them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap

EPS = 10e-7
"""The book's epsilon (``np.sqrt(var + 10e-7)``)."""

_PER_CHANNEL = (0, 2, 3)
"""The axes a per-channel normalization reduces over: N, H and W of (N, C, H, W)."""


def dropout(
    x: jax.Array, mask: jax.Array | None = None, dropout_ratio: float = 0.5, train_flg: bool = True
) -> jax.Array:
    """Train mode: the elements where the layer's ``mask`` is set pass unchanged, the others are 0
    (non-inverted dropout: no 1 / (1 - ratio) rescaling). Test mode: every element scaled by 1 - ratio."""
    if not train_flg:
        return x * (1.0 - dropout_ratio)
    if mask is None:
        raise ValueError(
            "dropout: train_flg=True needs the mask the layer drew in forward; none was captured"
        )
    return jnp.where(mask != 0, x, jnp.zeros_like(x))


def _normalize(
    x: jax.Array,
    axes: tuple[int, ...],
    stats: tuple[jax.Array, jax.Array] | None,
    gamma: jax.Array,
    beta: jax.Array,
    eps: float | jax.Array = EPS,
) -> jax.Array:
    """gamma * (x - mean) / sqrt(var + eps) + beta, with the statistics of ``x`` over ``axes`` (train
    mode) or the given ``stats`` (test mode); every statistic broadcast back with its reduced axes kept."""
    keep = [1 if i in axes else n for i, n in enumerate(x.shape)]
    if stats is None:
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
    else:
        mean, var = jnp.reshape(stats[0], keep), jnp.reshape(stats[1], keep)
    return (x - mean) * jax.lax.rsqrt(var + eps) * jnp.reshape(gamma, keep) + jnp.reshape(beta, keep)


def batch_normalization(
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    train_flg: bool = True,
    eps: float | jax.Array = EPS,
) -> jax.Array:
    """The book's BatchNormalization: x (N, D) or (N, C, H, W) is seen as (N, D) with D = C*H*W, and each
    of the D features is normalized over the batch (train) or with the running statistics (test)."""
    flat = jnp.reshape(x, (x.shape[0], -1))
    stats = None if train_flg else (running_mean, running_var)
    return jnp.reshape(_normalize(flat, (0,), stats, gamma, beta, eps), x.shape)


def batch_normalization_running(
    x: jax.Array, running_mean: jax.Array, running_var: jax.Array, momentum: float = 0.9
) -> tuple[jax.Array, jax.Array]:
    """The running statistics after one train-mode forward of ``batch_normalization``."""
    flat = jnp.reshape(x, (x.shape[0], -1))
    return _moving(running_mean, jnp.mean(flat, axis=0), momentum), _moving(
        running_var, jnp.var(flat, axis=0), momentum
    )


def channel_batch_normalization(
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    train_flg: bool = True,
    eps: float | jax.Array = EPS,
) -> jax.Array:
    """Per-channel (spatial) batch normalization of x (N, C, H, W): each channel normalized over N, H and
    W together; gamma, beta and the running statistics have shape (C,)."""
    stats = None if train_flg else (running_mean, running_var)
    return _normalize(x, _PER_CHANNEL, stats, gamma, beta, eps)


def channel_batch_normalization_running(
    x: jax.Array, running_mean: jax.Array, running_var: jax.Array, momentum: float = 0.9
) -> tuple[jax.Array, jax.Array]:
    """The running statistics after one train-mode forward of ``channel_batch_normalization``."""
    return _moving(running_mean, jnp.mean(x, axis=_PER_CHANNEL), momentum), _moving(
        running_var, jnp.var(x, axis=_PER_CHANNEL), momentum
    )


def _moving(old: jax.Array, new: jax.Array, momentum: float) -> jax.Array:
    return momentum * old + (1.0 - momentum) * new


# ---- the book's computational graphs (issue 20): the same outputs, node by node -------------------------


def _graph(
    tap: Tap,
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    stats: tuple[jax.Array, jax.Array] | None,
    eps: float | jax.Array,
) -> jax.Array:
    """The book's ``__forward`` on x (N, D): ``mu, xc, var, std, xn`` in train mode (``stats`` None), ``xc,
    xn`` with the running statistics in test mode; out = gamma * xn + beta."""
    if stats is None:
        mu = tap("mu", jnp.mean(x, axis=0))
        xc = tap("xc", x - mu)
        var = tap("var", jnp.mean(xc**2, axis=0))
        std = tap("std", jnp.sqrt(var + eps))
        xn = tap("xn", xc / std)
    else:
        xc = tap("xc", x - stats[0])
        xn = tap("xn", xc / jnp.sqrt(stats[1] + eps))
    return gamma * xn + beta


def batch_normalization_graph(
    tap: Tap,
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    train_flg: bool = True,
    eps: float | jax.Array = EPS,
) -> jax.Array:
    """``batch_normalization`` as the book's graph: ``x`` is the input seen as (N, D), as the book's
    ``forward`` reshapes it (same values), then ``mu, xc, var, std, xn`` (train) or ``xc, xn`` (test). The
    gradients at them are the book's ``dxn, dxc, dstd, dvar`` (the final ``dxc``, after its ``+=``); the
    book's ``dmu`` is minus the gradient at ``mu``."""
    flat = tap("x", jnp.reshape(x, (x.shape[0], -1)))
    stats = None if train_flg else (running_mean, running_var)
    return jnp.reshape(_graph(tap, flat, gamma, beta, stats, eps), x.shape)


def channel_batch_normalization_graph(
    tap: Tap,
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    train_flg: bool = True,
    eps: float | jax.Array = EPS,
) -> jax.Array:
    """``channel_batch_normalization`` as the book's graph on ``rows``, x (N, C, H, W) as (N*H*W, C) (one
    row per sample and position, as ``backprop.ChannelBatchNormalization`` lays it out): then the nodes of
    ``batch_normalization_graph``, per channel."""
    n, c, h, w = x.shape
    rows = tap("rows", jnp.reshape(jnp.transpose(x, (0, 2, 3, 1)), (-1, c)))
    stats = None if train_flg else (running_mean, running_var)
    out = _graph(tap, rows, gamma, beta, stats, eps)
    return jnp.transpose(jnp.reshape(out, (n, h, w, c)), (0, 3, 1, 2))
