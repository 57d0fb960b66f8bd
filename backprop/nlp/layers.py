"""The layers of book 2's ``common/layers.py``: MatMul, Affine, Softmax, SoftmaxWithLoss, Sigmoid,
SigmoidWithLoss, Dropout and Embedding.

Every layer has ``self.params`` and ``self.grads``, lists in the same order (empty when it has no
parameters); ``backward`` writes each gradient into its ``grads`` array in place, so that an optimizer (or a
model's list of every layer's ``grads``) holding those arrays sees it. Parameters are read from
``self.params`` on every call, as the book does, so an optimizer's in-place update is seen too.
A float32 input gives float32 outputs and gradients. Sigmoid, SoftmaxWithLoss and Dropout are book 1's
layers (same formulas, the stable versions of ``backprop``) with the two lists added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backprop import activations as _activations
from backprop import losses as _losses
from backprop import normalization as _normalization
from backprop._errors import check_dout, like, not_ready
from backprop.functions import as_float, sigmoid, softmax
from backprop.nlp.base_model import Layer

__all__ = [
    "Affine",
    "Dropout",
    "Embedding",
    "MatMul",
    "Sigmoid",
    "SigmoidWithLoss",
    "Softmax",
    "SoftmaxWithLoss",
]

Array = NDArray[Any]


def as_param(layer: str, name: str, value: Any, ndim: int) -> Array:
    """A parameter as the very array given (an optimizer updates it in place), checked for its rank."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.ndim != ndim:
        raise ValueError(f"{layer}.__init__: {name} must be {ndim}-D, got shape {array.shape}")
    return array


def _rows(layer: str, x: ArrayLike, W: Array) -> Array:
    """x as an (N, D) batch matching W (D, H), or a ValueError naming both shapes."""
    xa = np.asarray(x)
    if xa.ndim != 2 or xa.shape[1] != W.shape[0]:
        raise ValueError(
            f"{layer}.forward: x of shape {xa.shape} does not match W of shape {W.shape}; "
            f"expected (N, {W.shape[0]})"
        )
    return xa


class MatMul(Layer):
    """out = x @ W for x (N, D) and W (D, H).

    backward: dx = dout @ W.T (returned), dW = x.T @ dout (into ``grads[0]``).
    """

    def __init__(self, W: ArrayLike) -> None:
        super().__init__(as_param("MatMul", "W", W, 2))
        self.x: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        (W,) = self.params
        xa = _rows("MatMul", x, W)
        self.x = xa
        out: Array = np.dot(xa, W)
        return out

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None:
            raise not_ready("MatMul")
        (W,) = self.params
        check_dout("MatMul", dout, (self.x.shape[0], W.shape[1]))
        d = np.asarray(dout)
        self.grads[0][...] = np.dot(self.x.T, d)
        return like(np.dot(d, W.T), self.x, W)


class Affine(Layer):
    """out = x @ W + b for x (N, D), W (D, H), b (H,) (book 2's: x is not flattened; TimeAffine reshapes).

    backward: dx = dout @ W.T (returned), dW = x.T @ dout and db = sum of dout over the batch (into
    ``grads[0]`` and ``grads[1]``).
    """

    def __init__(self, W: ArrayLike, b: ArrayLike) -> None:
        Wa, ba = as_param("Affine", "W", W, 2), as_param("Affine", "b", b, 1)
        if ba.shape != (Wa.shape[1],):
            raise ValueError(
                f"Affine.__init__: b of shape {ba.shape} does not match W of shape {Wa.shape}; "
                f"expected ({Wa.shape[1]},)"
            )
        super().__init__(Wa, ba)
        self.x: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        W, b = self.params
        xa = _rows("Affine", x, W)
        self.x = xa
        out: Array = np.dot(xa, W) + b
        return out

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None:
            raise not_ready("Affine")
        W, _ = self.params
        check_dout("Affine", dout, (self.x.shape[0], W.shape[1]))
        d = np.asarray(dout)
        self.grads[0][...] = np.dot(self.x.T, d)
        self.grads[1][...] = np.sum(d, axis=0)
        return like(np.dot(d, W.T), self.x, W)


class Softmax(Layer):
    """out = softmax(x) over the last axis (x (N, C) in the book), computed as exp(x - max x) / sum.

    backward: dx = out * (dout - sum(out * dout)), the sum over the same axis.
    """

    def __init__(self) -> None:
        super().__init__()
        self.out: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        xa = np.asarray(x)
        if xa.ndim == 0 or xa.shape[-1] == 0:
            raise ValueError(f"Softmax.forward: x of shape {xa.shape} has no class axis to normalize over")
        self.out = softmax(xa)
        return self.out

    def backward(self, dout: ArrayLike) -> Array:
        if self.out is None:
            raise not_ready("Softmax")
        check_dout("Softmax", dout, self.out.shape)
        dx: Array = self.out * np.asarray(dout)
        dx -= self.out * np.sum(dx, axis=-1, keepdims=True)
        return like(dx, self.out)


class SoftmaxWithLoss(_losses.SoftmaxWithLoss, Layer):
    """loss = -(1/N) sum_n log softmax(x_n)[t_n]; t (N,) labels or (N, C) one-hot (book 1's layer).

    backward(dout=1): dx = dout * (softmax(x) - onehot(t)) / N.
    """

    def __init__(self) -> None:
        super().__init__()
        Layer.__init__(self)


class Sigmoid(_activations.Sigmoid, Layer):
    """out = 1 / (1 + exp(-x)), computed without overflow (book 1's layer).

    backward: dx = dout * out * (1 - out).
    """

    def __init__(self) -> None:
        super().__init__()
        Layer.__init__(self)


class SigmoidWithLoss(Layer):
    """loss = mean_n [softplus(x_n) - t_n x_n], the binary cross entropy of y = sigmoid(x) against t.

    x (N,) scores, t (N,) labels 0/1 (integers or floats; values in between are soft targets). Computed as
    max(x, 0) - t x + log1p(exp(-|x|)), finite and exact for any x where the book's
    -log(y + 1e-7) caps the loss of a confidently wrong score at 16.1.

    backward(dout=1): dx = dout * (y - t) / N.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loss: np.floating[Any] | None = None
        self.y: Array | None = None
        self.t: Array | None = None
        self._t: Array | None = None

    def forward(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        xa, ta = as_float(x), np.asarray(t)
        if xa.ndim != 1 or xa.shape[0] == 0:
            raise ValueError(f"SigmoidWithLoss.forward: x of shape {xa.shape} must be (N,) scores, N >= 1")
        if ta.shape != xa.shape:
            raise ValueError(
                f"SigmoidWithLoss.forward: t of shape {ta.shape} does not match x of shape {xa.shape}"
            )
        if ta.dtype.kind not in "biuf" or not np.all((ta >= 0) & (ta <= 1)):
            raise ValueError(
                f"SigmoidWithLoss.forward: t (shape {ta.shape}, dtype {ta.dtype}) must hold labels 0 and 1"
            )
        tf = ta.astype(xa.dtype)
        # softplus(x) - t x with every exponent <= 0; the two linear terms cancel exactly where t = 1, x > 0
        per_sample = np.maximum(xa, 0) - tf * xa + np.log1p(np.exp(-np.abs(xa)))
        self.t, self._t = ta, tf
        self.y = sigmoid(xa)
        self.loss = xa.dtype.type(np.sum(per_sample) / xa.shape[0])
        return self.loss

    def backward(self, dout: ArrayLike = 1) -> Array:
        if self.y is None or self._t is None:
            raise not_ready("SigmoidWithLoss")
        check_dout("SigmoidWithLoss", dout, ())
        kind = self.y.dtype.type
        # casting dout first keeps a float64 dout from promoting a float32 dx
        dx: Array = (self.y - self._t) * (kind(np.asarray(dout)) / kind(self.y.shape[0]))
        return dx


class Dropout(_normalization.Dropout, Layer):
    """Non-inverted dropout, as in both books' ``common/layers.py`` (``TimeDropout`` is the inverted one).

    train (``forward(x, train_flg=True)``): out = x * mask, mask = rand(*x.shape) > dropout_ratio kept in
    ``self.mask``; test: out = x * (1 - dropout_ratio). backward: dx = dout * mask (dout * (1 - ratio)
    after a test-mode forward). ``rng=`` (keyword only, not in the book): a Generator or seed that makes
    the masks reproducible; by default ``np.random.rand`` draws them, as in the book.
    """

    def __init__(self, dropout_ratio: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__(dropout_ratio, rng=rng)
        Layer.__init__(self)


class Embedding(Layer):
    """out = W[idx]: the rows of W (V, D) at the integer indices idx (any shape), out idx.shape + (D,).

    backward: dW = 0 everywhere, then dout added at every index (``np.add.at``): a word used several times
    in the batch gets the sum of its rows of dout. Returns None (the indices have no gradient).
    """

    def __init__(self, W: ArrayLike) -> None:
        super().__init__(as_param("Embedding", "W", W, 2))
        self.idx: Array | None = None

    def forward(self, idx: ArrayLike) -> Array:
        (W,) = self.params
        ia = np.asarray(idx)
        if ia.dtype.kind not in "iu":
            raise ValueError(
                f"Embedding.forward: idx must hold integer word ids, got dtype {ia.dtype} (shape {ia.shape})"
            )
        if ia.size and (ia.min() < 0 or ia.max() >= W.shape[0]):
            bad = ia[(ia < 0) | (ia >= W.shape[0])].flat[0]
            raise ValueError(
                f"Embedding.forward: word id {bad} in idx of shape {ia.shape} is outside [0, {W.shape[0]}) "
                f"for W of shape {W.shape}"
            )
        self.idx = ia
        out: Array = W[ia]
        return out

    def backward(self, dout: ArrayLike) -> None:
        if self.idx is None:
            raise not_ready("Embedding")
        (dW,) = self.grads
        check_dout("Embedding", dout, (*self.idx.shape, dW.shape[1]))
        dW[...] = 0
        # dW[idx] = dout would keep only the last of a repeated index's rows: add.at adds every one
        np.add.at(dW, self.idx, dout)
