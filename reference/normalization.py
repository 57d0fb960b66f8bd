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
