"""References for Relu and Sigmoid, straight from ``jax.nn``.

Convention at the kink: relu'(0) = 0, which is what ``jax.nn.relu`` differentiates to.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reference._graph import Tap


def relu(x: jax.Array) -> jax.Array:
    """out = max(x, 0); relu'(0) = 0."""
    return jax.nn.relu(x)


def sigmoid(x: jax.Array) -> jax.Array:
    """out = 1 / (1 + exp(-x)), via JAX's logistic primitive."""
    return jax.nn.sigmoid(x)


def relu_graph(tap: Tap, x: jax.Array) -> jax.Array:
    """``relu`` as the book's Relu computes it: ``mask = (x <= 0)`` (a boolean node, without a gradient),
    then x with the masked elements set to 0."""
    mask = tap("mask", x <= 0)
    return jnp.where(mask, jnp.zeros_like(x), x)
