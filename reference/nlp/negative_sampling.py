"""References for book 2's chapter-4 rows: EmbeddingDot and NegativeSamplingLoss.

The negative words are inputs here: the row captures the ones the layer drew in forward. The loss scores
the target and its negatives in one ``jnp.einsum`` and takes JAX's ``log_sigmoid``; ``jax.vjp`` adds up
the gradient of a word that appears several times (as target and negative, or in several samples).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import scoped
from reference.nlp.layers import sigmoid_with_loss_graph


def embedding_dot(h: jax.Array, W: jax.Array, idx: jax.Array) -> jax.Array:
    """out[n] = W[idx[n]] . h[n] for h (N, D), W (V, D), idx (N,)."""
    return jnp.einsum("nd,nd->n", h, jnp.take(W, idx, axis=0))


def _scores(h: jax.Array, W: jax.Array, target: jax.Array, negative_sample: jax.Array) -> jax.Array:
    """(N, 1 + sample_size) scores: the target's in column 0, then each negative's."""
    words = jnp.concatenate([target[:, None], negative_sample.astype(target.dtype)], axis=1)
    return jnp.einsum("nd,nkd->nk", h, jnp.take(W, words, axis=0))


def negative_sampling_loss(
    h: jax.Array, W: jax.Array, target: jax.Array, negative_sample: jax.Array, **_: Any
) -> jax.Array:
    """loss = (1/N) sum_n [-log sigmoid(s_n0) - sum_k log sigmoid(-s_nk)], s the scores of ``_scores``:
    the book's sum of one mean binary cross entropy per column. The constructor's corpus, power and
    sample_size only drive the sampler, whose draws arrive as ``negative_sample``."""
    s = _scores(h, W, target, negative_sample)
    sign = jnp.where(jnp.arange(s.shape[1]) == 0, 1.0, -1.0).astype(s.dtype)
    return -jnp.sum(jax.nn.log_sigmoid(sign * s)) / s.shape[0]


def negative_sampling_loss_epsilon(
    h: jax.Array, W: jax.Array, target: jax.Array, negative_sample: jax.Array, eps: float, **_: Any
) -> jax.Array:
    """The loss with the book's SigmoidWithLoss, -log(p + eps) per score; for ``--allow epsilon``."""
    s = _scores(h, W, target, negative_sample)
    y = jax.nn.sigmoid(s)
    p = jnp.where(jnp.arange(s.shape[1]) == 0, y, 1 - y)
    return -jnp.sum(jnp.log(p + eps)) / s.shape[0]


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------


def embedding_dot_graph(tap: Tap, h: jax.Array, W: jax.Array, idx: jax.Array) -> jax.Array:
    """The book's EmbeddingDot.forward: ``target_W = W[idx]`` (its Embedding's output), ``out = sum(target_W
    * h, axis=1)``."""
    h, W = tap("h", h), tap("W", W)
    target_W = tap("target_W", jnp.take(W, idx, axis=0))
    return tap("out", jnp.sum(target_W * h, axis=1))


def negative_sampling_loss_graph(
    tap: Tap, h: jax.Array, W: jax.Array, target: jax.Array, negative_sample: jax.Array, **_: Any
) -> jax.Array:
    """The book's NegativeSamplingLoss.forward: for k = 0 (the target, label 1) and k = 1 + i (the i-th
    negative, label 0), ``embed_dot_layers[k]`` scores the word (an ``embedding_dot_graph``: its
    ``out`` is the book's ``score``, its ``h`` and ``W`` get that layer's share of dh and of dW, the
    book's ``grads`` entry) and ``loss_layers[k]`` (a ``sigmoid_with_loss_graph``) gives that column's
    loss; ``loss`` is their sum."""
    h, W = tap("h", h), tap("W", W)
    words = jnp.concatenate([target[:, None], negative_sample.astype(target.dtype)], axis=1)
    losses = []
    for k in range(words.shape[1]):
        score = embedding_dot_graph(scoped(tap, f"embed_dot_layers[{k}]"), h, W, words[:, k])
        label = jnp.full(words.shape[:1], 1 if k == 0 else 0, dtype=jnp.int32)
        losses.append(sigmoid_with_loss_graph(scoped(tap, f"loss_layers[{k}]"), score, label))
    return tap("loss", sum(losses[1:], losses[0]))
