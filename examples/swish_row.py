"""A row of your own: a Swish layer, its JAX reference, and the row that ties them together.

    backprop-verify --layer examples/swish_row.py:Swish --against examples/swish_row.py:SWISH

The row gets the whole oracle: shrinking, diagnosis, the third witness, and the training-like checks.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from backprop.verify import Arg, Row


class Swish:
    """out = x * sigmoid(x); dx = dout * (s + x * s * (1 - s))."""

    def __init__(self) -> None:
        self.x: Any = None
        self.s: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        self.s = 0.5 * (1.0 + np.tanh(0.5 * x))  # a sigmoid that never overflows
        return x * self.s

    def backward(self, dout: Any) -> Any:
        s = self.s
        return dout * (s + self.x * s * (1.0 - s))


def swish(x: jax.Array) -> jax.Array:
    """The reference, from JAX's own primitives."""
    return x * jax.nn.sigmoid(x)


# A pool of shapes, smallest first (shrinking goes there): each distinct shape costs one JAX compilation,
# and the values vary freely within each.
SHAPES = tuple({"x": s, "out": s} for s in [(), (1,), (4,), (2, 3), (3, 1), (2, 3, 4), (2, 1, 3, 2), (4, 32)])


SWISH = Row(
    name="swish",
    layer=Swish,
    reference=swish,
    signature="forward(x) -> x * sigmoid(x)   (backward -> dx)",
    args=(Arg(name="x", grad="dx", domain=(-50.0, 50.0)),),
    shapes=SHAPES,
)
