"""Reference for Affine: flatten every axis after the batch axis, then x @ W + b."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap


def affine(x: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    """out = reshape(x, (N, -1)) @ W + b."""
    return jnp.matmul(jnp.reshape(x, (x.shape[0], -1)), W) + b


def affine_graph(tap: Tap, x: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    """``affine`` as the book's Affine computes it: ``x`` reshaped to (N, D) (the node ``x``: the book's
    forward rebinds the name), then ``x @ W + b``. The gradient at ``x`` is the book's ``dx`` before it is
    reshaped back."""
    flat = tap("x", jnp.reshape(x, (x.shape[0], -1)))
    return jnp.matmul(flat, W) + b
