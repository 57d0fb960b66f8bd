"""References for the non-recurrent time layers of the second book (``common/time_layers.py``).

Written from JAX's own primitives (``jnp.take``, ``jnp.einsum``, ``jax.nn.log_softmax``,
``jax.nn.log_sigmoid``); ``jax.vjp`` derives every gradient (the embedding's scatter-add of repeated ids
among them), so nothing here repeats the hand-derived backward passes of ``backprop.nlp.time_layers``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import logged, scoped
from reference.nlp.layers import embedding_graph, sigmoid_with_loss_graph

IGNORE_LABEL = -1
"""The label TimeSoftmaxWithLoss leaves out of its loss and its mean."""


def time_embedding(W: jax.Array, xs: jax.Array) -> jax.Array:
    """out[n, t] = W[xs[n, t]]: W (V, D), xs (N, T) ids, out (N, T, D)."""
    return jnp.take(W, xs, axis=0)


def time_affine(W: jax.Array, b: jax.Array, x: jax.Array) -> jax.Array:
    """out[n, t] = x[n, t] @ W + b: x (N, T, D), W (D, M), b (M,)."""
    return jnp.einsum("ntd,dm->ntm", x, W) + b


def _labels(xs: jax.Array, ts: jax.Array) -> jax.Array:
    """(N, T) labels: ts itself, or the argmax of one-hot (N, T, V) targets."""
    return jnp.argmax(ts, axis=-1) if ts.ndim == xs.ndim else ts


def _mean_over_kept(per_label: jax.Array, kept: jax.Array) -> jax.Array:
    """The mean of ``per_label`` over the kept labels; 0 when none is kept (never 0 / 0)."""
    count = jnp.sum(kept)
    return jnp.sum(jnp.where(kept, per_label, 0.0)) / jnp.maximum(count, 1)


def time_softmax_with_loss(xs: jax.Array, ts: jax.Array) -> jax.Array:
    """-mean of log_softmax(xs[n, t])[ts[n, t]] over the labels that are not -1: xs (N, T, V), ts (N, T)
    labels or (N, T, V) one-hot; 0 when every label is -1."""
    labels = _labels(xs, ts)
    kept = labels != IGNORE_LABEL
    logp = jax.nn.log_softmax(xs, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.where(kept, labels, 0)[..., None], axis=-1)[..., 0]
    return _mean_over_kept(-picked, kept)


def time_softmax_with_loss_epsilon(xs: jax.Array, ts: jax.Array, eps: float) -> jax.Array:
    """The same loss written with -log(softmax + eps): what ``--allow epsilon`` checks a loss against."""
    labels = _labels(xs, ts)
    kept = labels != IGNORE_LABEL
    y = jnp.take_along_axis(jax.nn.softmax(xs, axis=-1), jnp.where(kept, labels, 0)[..., None], axis=-1)
    return _mean_over_kept(-jnp.log(y[..., 0] + eps), kept)


def time_sigmoid_with_loss(xs: jax.Array, ts: jax.Array) -> jax.Array:
    """Mean binary cross entropy -(t log sigmoid(x) + (1 - t) log sigmoid(-x)) over xs (N, T)."""
    t = ts.astype(xs.dtype)
    return -jnp.mean(t * jax.nn.log_sigmoid(xs) + (1 - t) * jax.nn.log_sigmoid(-xs))


def time_sigmoid_with_loss_epsilon(xs: jax.Array, ts: jax.Array, eps: float) -> jax.Array:
    """The book's form: -mean log(y + eps) with y = sigmoid(x) for t = 1 and 1 - sigmoid(x) for t = 0."""
    y = jax.nn.sigmoid(xs)
    return -jnp.mean(jnp.log(jnp.where(ts == 1, y, 1 - y) + eps))


def time_dropout(xs: jax.Array, mask: jax.Array, dropout_ratio: float = 0.5) -> jax.Array:
    """Inverted dropout in train mode: the elements where ``mask`` is set are scaled by 1 / (1 - ratio),
    the others are 0."""
    return jnp.where(mask != 0, xs / (1.0 - dropout_ratio), jnp.zeros_like(xs))


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------


def time_affine_graph(tap: Tap, W: jax.Array, b: jax.Array, x: jax.Array) -> jax.Array:
    """The book's TimeAffine.forward: ``rx = x.reshape(N*T, -1)``, ``out = rx W + b`` (N*T, M), returned
    reshaped to (N, T, M)."""
    W, b, x = tap("W", W), tap("b", b), tap("x", x)
    N, T, D = x.shape
    rx = tap("rx", x.reshape(N * T, D))
    return tap("out", (jnp.dot(rx, W) + b).reshape(N, T, -1))


def time_softmax_with_loss_graph(tap: Tap, xs: jax.Array, ts: jax.Array) -> jax.Array:
    """The book's TimeSoftmaxWithLoss.forward, over the N*T rows it reshapes xs into: ``ys = softmax(xs)``,
    ``ls`` the log of each row's label probability, 0 where the label is ignored (``np.log(ys[...])``,
    then ``ls *= mask``), and ``loss = -sum(ls) / mask.sum()``. The logs come from log_softmax
    (``logged``: the gradient at ys is the book's graph's, NaN where a label's probability rounds to 0)."""
    xs = tap("xs", xs)
    N, T, V = xs.shape
    labels = _labels(xs, ts).reshape(N * T)
    kept = labels != IGNORE_LABEL
    picked = jnp.where(kept, labels, 0)[:, None]
    rows = xs.reshape(N * T, V)

    def pick(ys: jax.Array) -> jax.Array:
        return jnp.take_along_axis(ys, picked, axis=-1)[:, 0]

    stable = pick(jax.nn.log_softmax(rows, axis=-1))
    logs = logged(tap, "ys", jax.nn.softmax(jax.lax.stop_gradient(rows), axis=-1), pick, stable)
    ls = tap("ls", jnp.where(kept, logs, 0.0))
    return tap("loss", -jnp.sum(ls) / jnp.maximum(jnp.sum(kept), 1))


def time_sigmoid_with_loss_graph(tap: Tap, xs: jax.Array, ts: jax.Array) -> jax.Array:
    """The book's TimeSigmoidWithLoss.forward: ``layers[t]`` a ``sigmoid_with_loss_graph`` of xs[:, t] and
    ts[:, t] for each step t, and ``loss``, the mean of their losses over T."""
    xs = tap("xs", xs)
    T = xs.shape[1]
    losses = [sigmoid_with_loss_graph(scoped(tap, f"layers[{t}]"), xs[:, t], ts[:, t]) for t in range(T)]
    return tap("loss", sum(losses[1:], losses[0]) / T)


def time_embedding_graph(tap: Tap, W: jax.Array, xs: jax.Array) -> jax.Array:
    """The book's TimeEmbedding.forward: ``layers[t]`` an ``embedding_graph`` of W and xs[:, t] for each
    step t (the gradient at ``layers[t].W`` is that layer's ``grads[0]``, which the book sums), and
    ``out``."""
    W = tap("W", W)
    out = [embedding_graph(scoped(tap, f"layers[{t}]"), W, xs[:, t]) for t in range(xs.shape[1])]
    return tap("out", jnp.stack(out, axis=1))
