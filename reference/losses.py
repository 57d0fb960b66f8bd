"""Reference for SoftmaxWithLoss: mean cross entropy of ``jax.nn.log_softmax``."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softmax_with_loss(x: jax.Array, t: jax.Array) -> jax.Array:
    """loss = -mean_n log_softmax(x)[n, t_n]; t is (N,) integer labels or an (N, C) one-hot array."""
    logp = jax.nn.log_softmax(x, axis=-1)
    if t.ndim == x.ndim - 1:
        picked = jnp.take_along_axis(logp, jnp.expand_dims(t, -1), axis=-1)[..., 0]
    else:
        picked = jnp.sum(t * logp, axis=-1)
    return -jnp.mean(picked)


def softmax_with_loss_epsilon(x: jax.Array, t: jax.Array, eps: float) -> jax.Array:
    """The loss as the first book writes it: -mean_n log(softmax(x)[n, t_n] + eps), with the bias and the
    cap at -log(eps) that the epsilon brings; what ``--allow epsilon`` checks a loss against."""
    y = jax.nn.softmax(x, axis=-1)
    if t.ndim == x.ndim - 1:
        return -jnp.mean(jnp.log(jnp.take_along_axis(y, jnp.expand_dims(t, -1), axis=-1)[..., 0] + eps))
    return -jnp.sum(t * jnp.log(y + eps)) / x.shape[0]
