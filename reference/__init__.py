"""Every chapter-5 layer again, as a pure JAX function differentiated by ``jax.vjp``.

These functions are written with JAX's own primitives (``jax.nn.relu``, ``jax.nn.sigmoid``,
``jax.nn.log_softmax``, ``jnp.matmul``) and never transcribe the NumPy layers in ``backprop``, so that
the two cannot share a misconception.

Importing this package does **not** switch JAX to 64-bit for the whole process. Call the references
inside ``with reference.x64():`` (the oracle does) to get float64 results.
"""

from reference._x64 import x64
from reference.activations import relu, sigmoid
from reference.affine import affine
from reference.arithmetic import add, mul
from reference.losses import softmax_with_loss, softmax_with_loss_epsilon

__all__ = ["add", "affine", "mul", "relu", "sigmoid", "softmax_with_loss", "softmax_with_loss_epsilon", "x64"]
