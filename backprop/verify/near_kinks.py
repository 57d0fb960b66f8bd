"""Examples a network row cannot judge: a kink met within rounding inside the network.

Inside a network, a relu input or the two largest entries of a max-pooling window can be equal in exact
arithmetic yet differ by rounding, which then depends on the order each implementation sums in. The
library, a user's network and the JAX reference may each take a different one-sided derivative there,
and the gradients differ by whole units though every one of them is right. Shrinking heads straight for
such points (weights of 1e-16 beside biases of 1, a constant image), and a search that steers towards the
largest error finds them too. A network row therefore draws no example where the library's own forward
pass meets a kink that closely; the relu and pooling rows check the kinks themselves, with conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["NEAR", "near_kink"]

NEAR = 1e-10
"""How close, relative to the largest magnitude entering the same layer, counts as at the kink: float64
rounding through a few layers is about 1e-14 of it, and a drawn example is this close by chance about
once in 10^9."""


def _relu_near(x: NDArray[Any]) -> bool:
    """A relu input within NEAR of 0 (every input, when all are 0)."""
    scale = float(np.max(np.abs(x), initial=0.0))
    return bool(np.any(np.abs(x) <= NEAR * scale))


def _pool_near(x: NDArray[Any], pool: Any) -> bool:
    """A window whose largest entry is positive and its runner-up within NEAR of it (a tie included)."""
    from backprop.convolution import _geometry, _padded, _windows

    size = pool.pool_h * pool.pool_w
    if size < 2:
        return False
    out = _geometry("near_kink", x.shape, pool.pool_h, pool.pool_w, pool.stride, pool.pad, "pool")
    windows = _windows(_padded(x, pool.pad, -np.inf), pool.pool_h, pool.pool_w, pool.stride, out)
    top2 = np.sort(windows.reshape(*windows.shape[:4], size), axis=-1)[..., -2:]
    scale = float(np.max(np.abs(x), initial=0.0))
    return bool(np.any((top2[..., 1] > 0) & (top2[..., 1] - top2[..., 0] <= NEAR * scale)))


def near_kink(network: Any, run: Callable[[], Any]) -> str | None:
    """The first layer of ``network`` whose input ``run()`` (its forward pass) brings within rounding of
    a kink, by its ``layers`` key; None when there is none. Only the library's Relu and Pooling are
    looked at; the network is changed (its layers record their inputs), so pass a throwaway instance."""
    from backprop.activations import Relu
    from backprop.convolution import Pooling

    layers = getattr(network, "layers", None)
    named = list(layers.items()) if isinstance(layers, Mapping) else list(enumerate(layers or ()))
    seen: list[tuple[str, Any, NDArray[Any]]] = []
    for key, layer in named:
        if isinstance(layer, Relu | Pooling):
            forward = layer.forward

            def record(
                x: Any, *args: Any, _key: str = str(key), _layer: Any = layer, _f: Any = forward
            ) -> Any:
                seen.append((_key, _layer, np.array(x, dtype=np.float64)))
                return _f(x, *args)

            setattr(layer, "forward", record)  # noqa: B010 (an instance attribute shadows the method)
    run()
    for key, layer, x in seen:
        if _relu_near(x) if isinstance(layer, Relu) else _pool_near(x, layer):
            return key
    return None
