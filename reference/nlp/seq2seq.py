"""References for the models of ``backprop.nlp.seq2seq``: each model's loss as one pure JAX function of
the encoder's weights (``enc_*``) and the decoder's (``dec_*``). The encoder reads ``xs`` from a zero
state; the decoder is fed ``ts[:, :-1]`` from the encoder's last state (cell state zero) and scored on
``ts[:, 1:]``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from reference.nlp._sequence import embed, lstm, time_cross_entropy, zeros_state


def _encode(xs: jax.Array, W: dict[str, jax.Array]) -> jax.Array:
    e = embed(W["enc_embed_W"], xs)
    h0 = zeros_state(e, W["enc_lstm_Wh"])
    return lstm(e, W["enc_lstm_Wx"], W["enc_lstm_Wh"], W["enc_lstm_b"], h0, h0)


def _decoder_lstm(inputs: jax.Array, h: jax.Array, W: dict[str, jax.Array]) -> jax.Array:
    return lstm(inputs, W["dec_lstm_Wx"], W["dec_lstm_Wh"], W["dec_lstm_b"], h, jnp.zeros_like(h))


def _score(features: jax.Array, ts: jax.Array, W: dict[str, jax.Array]) -> jax.Array:
    return time_cross_entropy(features @ W["dec_affine_W"] + W["dec_affine_b"], ts[:, 1:])


def seq2seq(xs: jax.Array, ts: jax.Array, **W: Any) -> jax.Array:
    h = _encode(xs, W)[:, -1]
    dec = _decoder_lstm(embed(W["dec_embed_W"], ts[:, :-1]), h, W)
    return _score(dec, ts, W)


def peeky_seq2seq(xs: jax.Array, ts: jax.Array, **W: Any) -> jax.Array:
    """The encoder's h joins every decoder step twice: [h, embedding] into the LSTM, [h, state] into the
    affine layer."""
    h = _encode(xs, W)[:, -1]
    e = embed(W["dec_embed_W"], ts[:, :-1])
    peek = jnp.broadcast_to(h[:, None, :], (*e.shape[:2], h.shape[-1]))
    dec = _decoder_lstm(jnp.concatenate([peek, e], axis=-1), h, W)
    return _score(jnp.concatenate([peek, dec], axis=-1), ts, W)


def attention_seq2seq(xs: jax.Array, ts: jax.Array, **W: Any) -> jax.Array:
    """Each decoder state d_t attends over the encoder's states: a = softmax_s(enc_s . d_t), context
    c_t = sum_s a_s enc_s, and the affine layer reads [c_t, d_t]."""
    enc = _encode(xs, W)
    dec = _decoder_lstm(embed(W["dec_embed_W"], ts[:, :-1]), enc[:, -1], W)
    weights = jax.nn.softmax(jnp.einsum("nsh,nth->nts", enc, dec), axis=-1)
    context = jnp.einsum("nts,nsh->nth", weights, enc)
    return _score(jnp.concatenate([context, dec], axis=-1), ts, W)
