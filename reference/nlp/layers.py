"""References for book 2's ``common/layers.py`` rows: MatMul, Softmax, SigmoidWithLoss and Embedding.

Written from JAX's own primitives (``jnp.matmul``, ``jax.nn.softmax``, ``jax.nn.log_sigmoid``, a gather
with ``jnp.take``); ``jax.vjp`` derives every gradient, so the scatter-add of a repeated index in the
embedding's gradient is JAX's transpose of its gather, not a transcription of ``np.add.at``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import logged


def matmul(x: jax.Array, W: jax.Array) -> jax.Array:
    """out = x @ W for x (N, D), W (D, H)."""
    return jnp.matmul(x, W)


def softmax(x: jax.Array) -> jax.Array:
    """out = softmax(x) over the last axis."""
    return jax.nn.softmax(x, axis=-1)


def sigmoid_with_loss(x: jax.Array, t: jax.Array) -> jax.Array:
    """loss = -mean_n [t_n log sigmoid(x_n) + (1 - t_n) log sigmoid(-x_n)], finite for any x."""
    t = t.astype(x.dtype)
    return -jnp.mean(t * jax.nn.log_sigmoid(x) + (1 - t) * jax.nn.log_sigmoid(-x))


def sigmoid_with_loss_epsilon(x: jax.Array, t: jax.Array, eps: float) -> jax.Array:
    """The loss as the book writes it (``cross_entropy_error(np.c_[1 - y, y], t)``): -mean_n log(p_n + eps)
    with p_n = y_n for t_n = 1 and 1 - y_n for t_n = 0; what ``--allow epsilon`` checks a loss against."""
    y = jax.nn.sigmoid(x)
    t = t.astype(x.dtype)
    return -jnp.mean(t * jnp.log(y + eps) + (1 - t) * jnp.log(1 - y + eps))


def embedding(W: jax.Array, idx: jax.Array) -> jax.Array:
    """out = W[idx]: the rows of W at the integer indices idx, out idx.shape + (D,)."""
    return jnp.take(W, idx, axis=0)


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------


def sigmoid_with_loss_graph(tap: Tap, x: jax.Array, t: jax.Array) -> jax.Array:
    """The book's SigmoidWithLoss.forward: ``y = sigmoid(x)``, then ``loss``, the mean of -log of the
    label's probability (``np.c_[1 - y, y]`` picked by t), computed from x without rounding (``logged``:
    the gradient at y is the book's graph's, NaN where the picked probability rounds to 0)."""
    x = tap("x", x)
    positive = t.astype(bool)
    y = jax.nn.sigmoid(jax.lax.stop_gradient(x))
    logs = logged(
        tap, "y", y, lambda y: jnp.where(positive, y, 1 - y), jax.nn.log_sigmoid(jnp.where(positive, x, -x))
    )
    return tap("loss", -jnp.sum(logs) / x.shape[0])


def softmax_graph(tap: Tap, x: jax.Array) -> jax.Array:
    """The book's Softmax.forward: ``out = softmax(x)`` (its backward's ``dx = self.out * dout`` is a
    product on the way to the gradient at x, not a node's gradient)."""
    return tap("out", jax.nn.softmax(tap("x", x), axis=-1))


def embedding_graph(tap: Tap, W: jax.Array, idx: jax.Array) -> jax.Array:
    """The book's Embedding.forward: ``out = W[idx]``."""
    return tap("out", jnp.take(tap("W", W), idx, axis=0))
