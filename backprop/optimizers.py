"""The book's optimizers (section 6.1): SGD, Momentum, AdaGrad and Adam.

``update(params, grads)`` changes every parameter *in place*, since the layers hold those very arrays.
``params`` and ``grads`` are both dicts with the same keys (book 1's networks) or both lists in the same
order (book 2's); each optimizer keeps its state per key or position.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum"]

Array = NDArray[Any]
Params = Mapping[Any, Array] | Sequence[Array]
EPS = 1e-7


def _pairs(params: Params, grads: Params) -> list[tuple[Hashable, Array, Array]]:
    """(key, parameter, gradient) for every parameter, all checked before any is updated; a ValueError
    naming what does not match."""
    if isinstance(params, Mapping) and isinstance(grads, Mapping):
        if set(params) != set(grads):
            raise ValueError(f"update: params has keys {sorted(params)} but grads has {sorted(grads)}")
        keys: list[Hashable] = list(params)
        got = [(params[k], grads[k]) for k in keys]
    elif not isinstance(params, Mapping) and not isinstance(grads, Mapping):
        if len(params) != len(grads):
            raise ValueError(f"update: params has {len(params)} entries but grads has {len(grads)}")
        keys, got = list(range(len(params))), list(zip(params, grads, strict=True))
    else:
        raise ValueError("update: params and grads must both be dicts or both be lists")
    for key, (param, grad) in zip(keys, got, strict=True):
        if np.shape(param) != np.shape(grad):
            raise ValueError(f"update: {key!r} has shape {np.shape(param)} but its gradient {np.shape(grad)}")
    return [(key, param, np.asarray(grad)) for key, (param, grad) in zip(keys, got, strict=True)]


class SGD:
    """W <- W - lr * dW."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: Params, grads: Params) -> None:
        for _, param, grad in _pairs(params, grads):
            param -= self.lr * grad


class Momentum:
    """v <- momentum * v - lr * dW; W <- W + v."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: dict[Hashable, Array] = {}

    def update(self, params: Params, grads: Params) -> None:
        for key, param, grad in _pairs(params, grads):
            v = self.v.setdefault(key, np.zeros_like(param))
            v *= self.momentum
            v -= self.lr * grad
            param += v


class AdaGrad:
    """h <- h + dW * dW; W <- W - lr * dW / (sqrt(h) + 1e-7)."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.h: dict[Hashable, Array] = {}

    def update(self, params: Params, grads: Params) -> None:
        for key, param, grad in _pairs(params, grads):
            h = self.h.setdefault(key, np.zeros_like(param))
            h += grad * grad
            param -= self.lr * grad / (np.sqrt(h) + EPS)


class Adam:
    """m <- m + (1 - beta1)(dW - m); v <- v + (1 - beta2)(dW^2 - v);
    W <- W - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + 1e-7), t counting the updates."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict[Hashable, Array] = {}
        self.v: dict[Hashable, Array] = {}

    def update(self, params: Params, grads: Params) -> None:
        pairs = _pairs(params, grads)
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key, param, grad in pairs:
            m = self.m.setdefault(key, np.zeros_like(param))
            v = self.v.setdefault(key, np.zeros_like(param))
            m += (1 - self.beta1) * (grad - m)
            v += (1 - self.beta2) * (grad * grad - v)
            param -= lr_t * m / (np.sqrt(v) + EPS)
