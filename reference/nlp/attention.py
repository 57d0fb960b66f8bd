"""References for the attention layers of the second book's chapter 8 (``ch08/attention_layer.py``).

Written with ``jnp.einsum`` and ``jax.nn.softmax``; ``jax.vjp`` derives every gradient, so nothing here
repeats the hand-derived backward passes of ``backprop.nlp.attention``. TimeAttention is one batched
einsum over every decoder step, not a loop of Attention calls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def weight_sum(hs: jax.Array, a: jax.Array) -> jax.Array:
    """c[n] = sum_t a[n, t] hs[n, t]: hs (N, T, H), a (N, T), c (N, H)."""
    return jnp.einsum("nth,nt->nh", hs, a)


def attention_weight(hs: jax.Array, h: jax.Array) -> jax.Array:
    """a[n] = softmax over t of hs[n, t] . h[n]: hs (N, T, H), h (N, H), a (N, T)."""
    return jax.nn.softmax(jnp.einsum("nth,nh->nt", hs, h), axis=-1)


def attention(hs: jax.Array, h: jax.Array) -> jax.Array:
    """weight_sum(hs, attention_weight(hs, h)): the context vector (N, H)."""
    return weight_sum(hs, attention_weight(hs, h))


def time_attention(hs_enc: jax.Array, hs_dec: jax.Array) -> jax.Array:
    """out[n, u] = sum_t softmax_t(hs_enc[n, t] . hs_dec[n, u]) hs_enc[n, t]: hs_enc (N, T_enc, H), hs_dec
    (N, T_dec, H), out (N, T_dec, H)."""
    a = jax.nn.softmax(jnp.einsum("nth,nuh->nut", hs_enc, hs_dec), axis=-1)
    return jnp.einsum("nut,nth->nuh", a, hs_enc)
