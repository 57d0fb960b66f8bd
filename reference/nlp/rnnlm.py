"""References for the language models of ``backprop.nlp.rnnlm``: each model's loss, from a zero state,
as one pure JAX function of its weights. BetterRnnlm's dropout masks arrive as ``mask1``..``mask3`` (the
factor each element was multiplied by); its output weight is ``embed_W.T``, the tie."""

from __future__ import annotations

from typing import Any

import jax

from reference.nlp._sequence import embed, lstm, rnn, time_cross_entropy, zeros_state


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
