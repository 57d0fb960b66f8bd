"""References for the language models of ``backprop.nlp.rnnlm``: each model's loss, from a zero state,
as one pure JAX function of its weights. BetterRnnlm's dropout masks arrive as ``mask1``..``mask3`` (the
factor each element was multiplied by); its output weight is ``embed_W.T``, the tie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import scoped
from reference.nlp._sequence import embed, lstm, rnn, time_cross_entropy, zeros_state
from reference.nlp.recurrent import time_lstm_graph, time_rnn_graph
from reference.nlp.time_layers import time_affine_graph, time_embedding_graph, time_softmax_with_loss_graph


def simple_rnnlm(
    embed_W: jax.Array,
    rnn_Wx: jax.Array,
    rnn_Wh: jax.Array,
    rnn_b: jax.Array,
    affine_W: jax.Array,
    affine_b: jax.Array,
    xs: jax.Array,
    ts: jax.Array,
    **sizes: Any,
) -> jax.Array:
    e = embed(embed_W, xs)
    hs = rnn(e, rnn_Wx, rnn_Wh, rnn_b, zeros_state(e, rnn_Wh))
    return time_cross_entropy(hs @ affine_W + affine_b, ts)


def rnnlm(
    embed_W: jax.Array,
    lstm_Wx: jax.Array,
    lstm_Wh: jax.Array,
    lstm_b: jax.Array,
    affine_W: jax.Array,
    affine_b: jax.Array,
    xs: jax.Array,
    ts: jax.Array,
    **sizes: Any,
) -> jax.Array:
    e = embed(embed_W, xs)
    h0 = zeros_state(e, lstm_Wh)
    hs = lstm(e, lstm_Wx, lstm_Wh, lstm_b, h0, h0)
    return time_cross_entropy(hs @ affine_W + affine_b, ts)


def better_rnnlm(
    embed_W: jax.Array,
    lstm_Wx1: jax.Array,
    lstm_Wh1: jax.Array,
    lstm_b1: jax.Array,
    lstm_Wx2: jax.Array,
    lstm_Wh2: jax.Array,
    lstm_b2: jax.Array,
    affine_b: jax.Array,
    xs: jax.Array,
    ts: jax.Array,
    mask1: jax.Array,
    mask2: jax.Array,
    mask3: jax.Array,
    **sizes: Any,
) -> jax.Array:
    e = embed(embed_W, xs) * mask1
    h0 = zeros_state(e, lstm_Wh1)
    h1 = lstm(e, lstm_Wx1, lstm_Wh1, lstm_b1, h0, h0) * mask2
    h2 = lstm(h1, lstm_Wx2, lstm_Wh2, lstm_b2, h0, h0) * mask3
    return time_cross_entropy(h2 @ embed_W.T + affine_b, ts)


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------
# The model as the book builds it: ``self.layers`` (TimeEmbedding, the recurrent layer, TimeAffine) and
# ``self.loss_layer``, each layer's nodes named by that path (``layers[1].layers[2].h_next`` is step 2 of
# the recurrent layer), from a zero state as the row checks it.


def _stack_graph(
    tap: Tap,
    recurrent: Callable[..., jax.Array],
    weights: tuple[jax.Array, ...],
    W: dict[str, jax.Array],
    xs: jax.Array,
    ts: jax.Array,
) -> jax.Array:
    e = time_embedding_graph(scoped(tap, "layers[0]"), W["embed_W"], xs)
    zeros = jnp.zeros((e.shape[0], weights[1].shape[0]), dtype=e.dtype)
    states = (zeros, zeros) if recurrent is time_lstm_graph else (zeros,)
    hs = recurrent(scoped(tap, "layers[1]"), *weights, e, *states)
    score = time_affine_graph(scoped(tap, "layers[2]"), W["affine_W"], W["affine_b"], hs)
    return tap("loss", time_softmax_with_loss_graph(scoped(tap, "loss_layer"), score, ts))


def simple_rnnlm_graph(
    tap: Tap,
    embed_W: jax.Array,
    rnn_Wx: jax.Array,
    rnn_Wh: jax.Array,
    rnn_b: jax.Array,
    affine_W: jax.Array,
    affine_b: jax.Array,
    xs: jax.Array,
    ts: jax.Array,
    **sizes: Any,
) -> jax.Array:
    """``simple_rnnlm`` as the book's SimpleRnnlm: layers[0] TimeEmbedding, layers[1] TimeRNN, layers[2]
    TimeAffine, loss_layer TimeSoftmaxWithLoss."""
    W = {"embed_W": embed_W, "affine_W": affine_W, "affine_b": affine_b}
    return _stack_graph(tap, time_rnn_graph, (rnn_Wx, rnn_Wh, rnn_b), W, xs, ts)


def rnnlm_graph(
    tap: Tap,
    embed_W: jax.Array,
    lstm_Wx: jax.Array,
    lstm_Wh: jax.Array,
    lstm_b: jax.Array,
    affine_W: jax.Array,
    affine_b: jax.Array,
    xs: jax.Array,
    ts: jax.Array,
    **sizes: Any,
) -> jax.Array:
    """``rnnlm`` as the book's Rnnlm: layers[1] a TimeLSTM (its steps ``layers[1].layers[t].c_next``...)."""
    W = {"embed_W": embed_W, "affine_W": affine_W, "affine_b": affine_b}
    return _stack_graph(tap, time_lstm_graph, (lstm_Wx, lstm_Wh, lstm_b), W, xs, ts)
