"""References for the word2vec models of ``backprop.nlp.cbow``: each model's loss as one pure JAX
function of its weights. The negative samples the model drew arrive as ``negatives`` (layers, N, S).

Given ``eps``, each is the loss as the book writes it, ``-log(y + eps)`` of every probability (its
``cross_entropy_error``): what ``--allow epsilon`` checks a model's loss against."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import scoped
from reference.nlp._sequence import embed
from reference.nlp.layers import embedding_graph
from reference.nlp.negative_sampling import negative_sampling_loss_graph


def simple_cbow(
    W_in: jax.Array,
    W_out: jax.Array,
    contexts: jax.Array,
    target: jax.Array,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """softmax cross entropy of mean_i(c_i W_in) W_out, for one-hot contexts (N, 2, V) and target (N, V)."""
    h = jnp.mean(jnp.einsum("ncv,vh->nch", contexts.astype(W_in.dtype), W_in), axis=1)
    scores = h @ W_out
    if eps is None:
        log_p = jax.nn.log_softmax(scores, axis=-1)
    else:
        log_p = jnp.log(jax.nn.softmax(scores, axis=-1) + eps)
    return -jnp.mean(jnp.sum(target * log_p, axis=-1))


def _log_sigmoid(x: jax.Array, eps: float | None) -> jax.Array:
    """log sigmoid(x); with ``eps``, the book's log(sigmoid(x) + eps) (of 1 - y for a negative's -x)."""
    return jax.nn.log_sigmoid(x) if eps is None else jnp.log(jax.nn.sigmoid(x) + eps)


def _negative_sampling(
    W_out: jax.Array, h: jax.Array, target: jax.Array, negatives: jax.Array, eps: float | None
) -> jax.Array:
    """mean_n -log sigmoid(h . W_out[target]) + sum_k mean_n -log sigmoid(-h . W_out[negative_k])."""
    positive = jnp.einsum("nh,nh->n", h, embed(W_out, target))
    negative = jnp.einsum("nh,nkh->nk", h, embed(W_out, negatives))
    return -jnp.mean(_log_sigmoid(positive, eps)) - jnp.sum(jnp.mean(_log_sigmoid(-negative, eps), axis=0))


def cbow(
    W_in: jax.Array,
    W_out: jax.Array,
    contexts: jax.Array,
    target: jax.Array,
    negatives: jax.Array,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """Negative sampling loss of the mean context embedding, contexts (N, 2w) and target (N,) ids."""
    h = jnp.mean(embed(W_in, contexts), axis=1)
    return _negative_sampling(W_out, h, target, negatives[0], eps)


def skip_gram(
    W_in: jax.Array,
    W_out: jax.Array,
    contexts: jax.Array,
    target: jax.Array,
    negatives: jax.Array,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """Sum over context positions of the negative sampling loss of the target's embedding."""
    h = embed(W_in, target)
    return sum(
        (_negative_sampling(W_out, h, contexts[:, i], negatives[i], eps) for i in range(contexts.shape[1])),
        jnp.zeros((), dtype=W_in.dtype),
    )


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------
# The exact loss (``eps`` is not used: the nodes are the right values, whatever loss the layer is checked
# against), each layer's nodes named by the book's path to it.


def cbow_graph(
    tap: Tap,
    W_in: jax.Array,
    W_out: jax.Array,
    contexts: jax.Array,
    target: jax.Array,
    negatives: jax.Array,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """The book's CBOW.forward: ``in_layers[i]`` embeds context i, ``h`` their mean, and ``ns_loss`` (a
    ``negative_sampling_loss_graph``: ``ns_loss.embed_dot_layers[k].out``...) gives the loss."""
    count = contexts.shape[1]
    outs = [embedding_graph(scoped(tap, f"in_layers[{i}]"), W_in, contexts[:, i]) for i in range(count)]
    h = tap("h", sum(outs[1:], outs[0]) * (1 / count))
    return tap("loss", negative_sampling_loss_graph(scoped(tap, "ns_loss"), h, W_out, target, negatives[0]))


def skip_gram_graph(
    tap: Tap,
    W_in: jax.Array,
    W_out: jax.Array,
    contexts: jax.Array,
    target: jax.Array,
    negatives: jax.Array,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """The book's SkipGram.forward: ``in_layer`` embeds the target (its ``out`` is h), and
    ``loss_layers[i]`` (a ``negative_sampling_loss_graph``) scores context word i; ``loss`` is their sum."""
    h = embedding_graph(scoped(tap, "in_layer"), W_in, target)
    losses = [
        negative_sampling_loss_graph(scoped(tap, f"loss_layers[{i}]"), h, W_out, contexts[:, i], negatives[i])
        for i in range(contexts.shape[1])
    ]
    return tap("loss", sum(losses[1:], losses[0]))
