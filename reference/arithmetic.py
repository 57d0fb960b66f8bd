"""References for MulLayer and AddLayer: broadcasting product and sum."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mul(x: jax.Array, y: jax.Array) -> jax.Array:
    """out = x * y, with NumPy broadcasting."""
    return jnp.multiply(x, y)


def add(x: jax.Array, y: jax.Array) -> jax.Array:
    """out = x + y, with NumPy broadcasting."""
    return jnp.add(x, y)
