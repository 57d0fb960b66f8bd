"""References for Relu and Sigmoid, straight from ``jax.nn``.

Convention at the kink: relu'(0) = 0, which is what ``jax.nn.relu`` differentiates to.
"""

from __future__ import annotations

import jax


def relu(x: jax.Array) -> jax.Array:
    """out = max(x, 0); relu'(0) = 0."""
    return jax.nn.relu(x)


def sigmoid(x: jax.Array) -> jax.Array:
    """out = 1 / (1 + exp(-x)), via JAX's logistic primitive."""
    return jax.nn.sigmoid(x)
