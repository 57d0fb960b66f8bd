"""Every chapter-5 and chapter-6 layer again, as a pure JAX function differentiated by ``jax.vjp``.

These functions are written with JAX's own primitives (``jax.nn.relu``, ``jax.nn.sigmoid``,
``jax.nn.log_softmax``, ``jnp.matmul``) and never transcribe the NumPy layers in ``backprop``, so that
the two cannot share a misconception.

Importing this package does **not** switch JAX to 64-bit for the whole process. Call the references
inside ``with reference.x64():`` (the oracle does) to get float64 results.

Importing this package does not import JAX either: each name imports its submodule on first access.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from backprop._lazy import lazy_names

if TYPE_CHECKING:
    from reference._x64 import x64
    from reference.activations import relu, sigmoid
    from reference.affine import affine
    from reference.arithmetic import add, mul
    from reference.convolution import col2im, convolution, im2col, pooling
    from reference.losses import softmax_with_loss, softmax_with_loss_epsilon
    from reference.networks import deep_conv_net, multi_layer_net_extend, simple_conv_net, two_layer_net
    from reference.normalization import (
        batch_normalization,
        batch_normalization_running,
        channel_batch_normalization,
        channel_batch_normalization_running,
        dropout,
    )

_SUBMODULE = {
    "x64": "_x64",
    "relu": "activations",
    "sigmoid": "activations",
    "affine": "affine",
    "add": "arithmetic",
    "mul": "arithmetic",
    "col2im": "convolution",
    "convolution": "convolution",
    "im2col": "convolution",
    "pooling": "convolution",
    "softmax_with_loss": "losses",
    "softmax_with_loss_epsilon": "losses",
    "deep_conv_net": "networks",
    "multi_layer_net_extend": "networks",
    "simple_conv_net": "networks",
    "two_layer_net": "networks",
    "dropout": "normalization",
    "batch_normalization": "normalization",
    "batch_normalization_running": "normalization",
    "channel_batch_normalization": "normalization",
    "channel_batch_normalization_running": "normalization",
}

__all__ = [
    "add",
    "affine",
    "batch_normalization",
    "batch_normalization_running",
    "channel_batch_normalization",
    "channel_batch_normalization_running",
    "col2im",
    "convolution",
    "deep_conv_net",
    "dropout",
    "im2col",
    "mul",
    "multi_layer_net_extend",
    "pooling",
    "relu",
    "sigmoid",
    "simple_conv_net",
    "softmax_with_loss",
    "softmax_with_loss_epsilon",
    "two_layer_net",
    "x64",
]


__getattr__, __dir__ = lazy_names(__name__, _SUBMODULE)


class _Package(ModuleType):
    """Keeps ``reference.affine`` the function: importing the submodule of that name would rebind it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _SUBMODULE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
