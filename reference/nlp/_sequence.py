"""Pieces the model references share, each from JAX's own primitives: an embedding lookup, recurrent
layers as ``jax.lax.scan`` over time, and the mean cross entropy over time steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def embed(W: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of W by id (any shape of ids): jnp.take, whose vjp scatters-adds repeated ids."""
    return jnp.take(W, ids, axis=0)


def rnn(xs: jax.Array, Wx: jax.Array, Wh: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b) over the time axis 1 of xs (N, T, D); every h_t (N, T, H)."""

    def step(h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = jnp.tanh(x @ Wx + h @ Wh + b)
        return h, h

    _, hs = jax.lax.scan(step, h0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def lstm(
    xs: jax.Array, Wx: jax.Array, Wh: jax.Array, b: jax.Array, h0: jax.Array, c0: jax.Array
) -> jax.Array:
    """The book's LSTM over time: A = x Wx + h Wh + b split into f, g, i, o (in that order), c = f c +
    g i with g = tanh, the others sigmoid, h = o tanh(c); every h_t (N, T, H)."""

    def step(
        carry: tuple[jax.Array, jax.Array], x: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        h, c = carry
        f, g, i, o = jnp.split(x @ Wx + h @ Wh + b, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jnp.tanh(g) * jax.nn.sigmoid(i)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    _, hs = jax.lax.scan(step, (h0, c0), jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def zeros_state(xs: jax.Array, Wh: jax.Array) -> jax.Array:
    return jnp.zeros((xs.shape[0], Wh.shape[0]), dtype=Wh.dtype)


def time_cross_entropy(scores: jax.Array, ts: jax.Array) -> jax.Array:
    """Mean over the valid labels (t != -1) of -log softmax(score)[t], scores (N, T, V), ts (N, T)."""
    valid = ts != -1
    picked = jnp.take_along_axis(jax.nn.log_softmax(scores, axis=-1), jnp.where(valid, ts, 0)[..., None], -1)
    return -jnp.sum(jnp.where(valid, picked[..., 0], 0.0)) / jnp.sum(valid)
