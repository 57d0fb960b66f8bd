"""References for the attention layers of the second book's chapter 8 (``ch08/attention_layer.py``).

Written with ``jnp.einsum`` and ``jax.nn.softmax``; ``jax.vjp`` derives every gradient, so nothing here
repeats the hand-derived backward passes of ``backprop.nlp.attention``. TimeAttention is one batched
einsum over every decoder step, not a loop of Attention calls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.nlp._nodes import scoped


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


# ---- the book's computational graphs (issue 20) ------------------------------------------------------------
# Each ``*_graph`` is its reference again, written as ``ch08/attention_layer.py``'s forward pass, with every
# node the book names tapped (``reference._graph``): the culprit search matches a failing layer's arrays
# to them. The gradient at a node the book broadcasts (``hr``, ``ar``) is summed over the broadcast axis;
# the book's backward keeps it unsummed (``dhr``, ``dar``) before summing it into ``dh``, ``da``.


def weight_sum_graph(tap: Tap, hs: jax.Array, a: jax.Array) -> jax.Array:
    """The book's WeightSum.forward: ``ar = a.reshape(N, T, 1)``, ``t = hs * ar``, ``c = sum_t t``."""
    hs, a = tap("hs", hs), tap("a", a)
    N, T, _ = hs.shape
    ar = tap("ar", a.reshape(N, T, 1))
    t = tap("t", hs * ar)
    return tap("c", jnp.sum(t, axis=1))


def attention_weight_graph(tap: Tap, hs: jax.Array, h: jax.Array) -> jax.Array:
    """The book's AttentionWeight.forward: ``hr = h.reshape(N, 1, H)``, ``t = hs * hr``, ``s = sum_h t``,
    ``a = softmax(s)``."""
    hs, h = tap("hs", hs), tap("h", h)
    N, _, H = hs.shape
    hr = tap("hr", h.reshape(N, 1, H))
    t = tap("t", hs * hr)
    s = tap("s", jnp.sum(t, axis=2))
    return tap("a", jax.nn.softmax(s, axis=-1))


def attention_graph(tap: Tap, hs: jax.Array, h: jax.Array) -> jax.Array:
    """The book's Attention.forward: ``attention_weight_layer`` then ``weight_sum_layer``, their nodes
    named ``attention_weight_layer.s``, ``weight_sum_layer.c``; each sublayer's ``hs`` gets its own path's
    gradient (the book's ``dhs1`` and ``dhs0``, which its backward adds), and ``out``."""
    hs, h = tap("hs", hs), tap("h", h)
    a = attention_weight_graph(scoped(tap, "attention_weight_layer"), hs, h)
    return tap("out", weight_sum_graph(scoped(tap, "weight_sum_layer"), hs, a))


def time_attention_graph(tap: Tap, hs_enc: jax.Array, hs_dec: jax.Array) -> jax.Array:
    """The book's TimeAttention.forward: ``layers[t]`` an ``attention_graph`` of hs_enc and
    ``hs_dec[:, t, :]`` for each decoder step t (its nodes ``layers[t].weight_sum_layer.c``...), and
    ``out``."""
    hs_enc, hs_dec = tap("hs_enc", hs_enc), tap("hs_dec", hs_dec)
    out = [
        attention_graph(scoped(tap, f"layers[{t}]"), hs_enc, hs_dec[:, t, :]) for t in range(hs_dec.shape[1])
    ]
    return tap("out", jnp.stack(out, axis=1))
