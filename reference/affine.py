"""Reference for Affine: flatten every axis after the batch axis, then x @ W + b."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def affine(x: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    """out = reshape(x, (N, -1)) @ W + b."""
    return jnp.matmul(jnp.reshape(x, (x.shape[0], -1)), W) + b
