"""Reference for SoftmaxWithLoss: mean cross entropy of ``jax.nn.log_softmax``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from reference._graph import Tap


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


def softmax_with_loss_graph(tap: Tap, x: jax.Array, t: jax.Array) -> jax.Array:
    """``softmax_with_loss`` as the book's SoftmaxWithLoss computes it: ``y = softmax(x)``, then ``loss``,
    the mean of -log y at the targets. The gradient at ``y`` is -1 / (N y) at each target, 0 elsewhere.

    ``log y`` is written as ``log_softmax(x) + log1p((y' - y) / y)``, y' the tapped y: the same value and
    the same derivative 1 / y at y', while the gradient at x is the reference's, through log_softmax alone
    (y itself is held constant: its path adds nothing). So a logit far below the others, whose y underflows
    to 0, leaves the loss and the gradient at x finite, as the reference's are; only the gradient at such
    a y is not (or is -1 / (N * the smallest normal float))."""
    logp = jax.nn.log_softmax(x, axis=-1)
    y = jax.lax.stop_gradient(jnp.exp(logp))
    shown = tap("y", y)
    log_y = logp + jnp.log1p((shown - y) / jnp.maximum(y, float(np.finfo(y.dtype).tiny)))
    if t.ndim == x.ndim - 1:
        picked = jnp.take_along_axis(log_y, jnp.expand_dims(t, -1), axis=-1)[..., 0]
    else:
        picked = jnp.sum(t * log_y, axis=-1)
    return tap("loss", -jnp.mean(picked))
