"""The non-recurrent time layers of the second book (``common/time_layers.py``): each applies one layer to
every time step of an (N, T, ...) batch at once.

Book 2's convention: ``self.params`` and ``self.grads`` are lists in the same order, and ``backward`` writes
each gradient into its ``grads`` entry in place. Every output keeps its input's floating dtype (the book
allocates with ``dtype='f'``, so float32 in gives float32 out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._errors import check_dout, like, not_ready
from ..functions import as_float as _float
from .base_model import Layer

__all__ = [
    "TimeAffine",
    "TimeDropout",
    "TimeEmbedding",
    "TimeSigmoidWithLoss",
    "TimeSoftmaxWithLoss",
]

Array = NDArray[Any]


def _indices(layer: str, name: str, value: ArrayLike, size: int, ignore: int | None = None) -> Array:
    """Integer indices in [0, size) (or ``ignore``), or a ValueError naming the layer and the shape."""
    array = np.asarray(value)
    if array.dtype.kind not in "iub":
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(
                f"{layer}: {name} of shape {array.shape} and dtype {array.dtype} must hold integers"
            )
        array = array.astype(np.int64)
    allowed = (array >= 0) & (array < size)
    if ignore is not None:
        allowed |= array == ignore
    if not np.all(allowed):
        bad = array[~allowed].ravel()[0]
        also = f" or {ignore}" if ignore is not None else ""
        raise ValueError(f"{layer}: {name} of shape {array.shape} holds {bad}, outside [0, {size}){also}")
    return array.astype(np.intp, copy=False)


class TimeEmbedding(Layer):
    """out[n, t] = W[xs[n, t]] for xs (N, T) word ids and W (V, D): out (N, T, D).

    backward(dout) writes dW[v] = sum of dout[n, t] over every (n, t) with xs[n, t] == v (a word that occurs
    several times gets the sum of its gradients, ``np.add.at``) into ``grads[0]`` and returns None: word ids
    have no gradient.
    """

    def __init__(self, W: Array) -> None:
        super().__init__(W)
        self.W = W
        self.idx: Array | None = None

    def forward(self, xs: ArrayLike) -> Array:
        W = self.params[0]
        shape = np.shape(xs)
        if len(shape) != 2:
            raise ValueError(f"TimeEmbedding.forward: xs of shape {shape} must be (N, T) word ids")
        self.idx = _indices("TimeEmbedding.forward", "xs", xs, W.shape[0])
        out: Array = W[self.idx]  # fancy indexing copies: out never aliases W
        return out

    def backward(self, dout: ArrayLike) -> None:
        if self.idx is None:
            raise not_ready("TimeEmbedding")
        W, dW = self.params[0], self.grads[0]
        check_dout("TimeEmbedding", dout, (*self.idx.shape, W.shape[1]))
        dW[...] = 0
        # add.at accumulates repeated ids; dW[idx] = dout (or +=) would keep only one of them
        np.add.at(dW, self.idx, np.asarray(dout))
        return None


class TimeAffine(Layer):
    """out = x @ W + b on every time step: x (N, T, D), W (D, M), b (M,) give out (N, T, M).

    backward(dout): dx = dout @ W.T, and, summed over the batch and the time steps, dW = sum x^T dout and
    db = sum dout (written into ``grads[0]`` and ``grads[1]``).
    """

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W, b)
        self.x: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        W, b = self.params
        xa = _float(x)
        if xa.ndim != 3 or xa.shape[2] != W.shape[0]:
            raise ValueError(
                f"TimeAffine.forward: x of shape {xa.shape} must be (N, T, D) with D = {W.shape[0]}, "
                f"the rows of W of shape {W.shape}"
            )
        n, t, d = xa.shape
        out = xa.reshape(n * t, d) @ W + b
        self.x = xa
        return out.reshape(n, t, -1).astype(xa.dtype, copy=False)

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None:
            raise not_ready("TimeAffine")
        W, _ = self.params
        n, t, d = self.x.shape
        check_dout("TimeAffine", dout, (n, t, W.shape[1]))
        d2 = np.asarray(dout).reshape(n * t, -1)
        self.grads[0][...] = self.x.reshape(n * t, d).T @ d2
        self.grads[1][...] = d2.sum(axis=0)
        dx: Array = d2 @ W.T
        return like(dx.reshape(n, t, d), self.x)


def _log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    out: Array = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


class TimeSoftmaxWithLoss(Layer):
    """Cross entropy of softmax(xs) over every time step, for xs (N, T, V) and ts (N, T) labels (or (N, T, V)
    one-hot, read by its argmax as in the book).

    loss = -(1/K) sum over the K labels other than ``ignore_label`` (-1) of log softmax(xs[n, t])[ts[n, t]]:
    ignored labels (padding) add nothing to the loss and get a zero gradient, and the mean is over the
    labels that count. When every label is ignored, K = 0 and the loss is 0 with a zero gradient (the book
    divides 0 by 0 and gives NaN).

    backward(dout=1): dxs[n, t] = dout * (softmax(xs[n, t]) - onehot(ts[n, t])) / K, zero where ignored.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ignore_label = -1
        self.cache: tuple[Array, Array, Array, int] | None = None

    def forward(self, xs: ArrayLike, ts: ArrayLike) -> np.floating[Any]:
        xa = _float(xs)
        if xa.ndim != 3 or xa.shape[2] < 1:
            raise ValueError(f"TimeSoftmaxWithLoss.forward: xs of shape {xa.shape} must be (N, T, V) scores")
        n, t, v = xa.shape
        ta = np.asarray(ts)
        if ta.shape == xa.shape:  # one-hot targets, as the book reads them
            ta = ta.argmax(axis=2)
        elif ta.shape != (n, t):
            raise ValueError(
                f"TimeSoftmaxWithLoss.forward: ts of shape {ta.shape} must be (N, T) labels or (N, T, V) "
                f"one-hot for xs of shape {xa.shape}"
            )
        labels = _indices("TimeSoftmaxWithLoss.forward", "ts", ta, v, ignore=self.ignore_label)
        mask = labels != self.ignore_label
        count = int(mask.sum())
        logp = _log_softmax(xa)
        picked = np.take_along_axis(logp, np.where(mask, labels, 0)[..., None], axis=2)[..., 0]
        # max(count, 1): no label counts, so nothing is learnt; 0 rather than the book's 0 / 0 = NaN
        loss = np.sum(-picked[mask]) / max(count, 1)  # an empty sum is +0.0, not -0.0
        self.cache = (labels, np.exp(logp), mask, count)
        result: np.floating[Any] = xa.dtype.type(loss)  # a scalar of xs's dtype, as the book's
        return result

    def backward(self, dout: ArrayLike = 1) -> Array:
        if self.cache is None:
            raise not_ready("TimeSoftmaxWithLoss")
        check_dout("TimeSoftmaxWithLoss", dout, ())
        labels, ys, mask, count = self.cache
        dx = ys.copy()
        n, t = np.nonzero(mask)
        dx[n, t, labels[n, t]] -= 1
        dx *= mask[..., None]
        # dout cast first: a float64 dout must not promote a float32 dx
        dx *= ys.dtype.type(np.asarray(dout)) / ys.dtype.type(max(count, 1))
        return dx


def _softplus(x: Array) -> Array:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    out: Array = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return out


def _sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))  # never overflows
    out: Array = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out


class TimeSigmoidWithLoss(Layer):
    """Mean binary cross entropy of sigmoid(xs) for xs (N, T) scores and ts (N, T) targets of 0 and 1.

    loss = (1/(N T)) sum t softplus(-x) + (1 - t) softplus(x), which is -t log y - (1 - t) log(1 - y) with
    y = sigmoid(x), computed without overflow or log(0) (the book adds 1e-7 inside the log instead).
    backward(dout=1): dxs = dout * (sigmoid(xs) - ts) / (N T).
    """

    def __init__(self) -> None:
        super().__init__()
        self.xs_shape: tuple[int, ...] | None = None
        self.cache: tuple[Array, Array] | None = None

    def forward(self, xs: ArrayLike, ts: ArrayLike) -> np.floating[Any]:
        xa = _float(xs)
        ta = np.asarray(ts)
        if xa.ndim != 2 or ta.shape != xa.shape:
            raise ValueError(
                f"TimeSigmoidWithLoss.forward: xs of shape {xa.shape} and ts of shape {ta.shape} must both "
                "be (N, T)"
            )
        tf = ta.astype(xa.dtype)
        loss = np.mean(tf * _softplus(-xa) + (1 - tf) * _softplus(xa))
        self.xs_shape = xa.shape
        self.cache = (_sigmoid(xa), tf)
        result: np.floating[Any] = xa.dtype.type(loss)
        return result

    def backward(self, dout: ArrayLike = 1) -> Array:
        if self.cache is None:
            raise not_ready("TimeSigmoidWithLoss")
        check_dout("TimeSigmoidWithLoss", dout, ())
        y, t = self.cache
        scale = y.dtype.type(np.asarray(dout)) / y.dtype.type(y.size)
        dx: Array = (y - t) * scale
        return dx


class TimeDropout(Layer):
    """Inverted dropout on every element of xs (any shape), with the mode in the attribute ``train_flg``.

    train (``train_flg`` True, the default): mask = (rand(*xs.shape) > dropout_ratio) / (1 - dropout_ratio)
    and out = xs * mask: each element is dropped with probability ``dropout_ratio`` and the kept ones are
    scaled up so that the expected output is xs (unlike the first book's Dropout). ``self.mask`` keeps the
    scaled mask, in xs's dtype, as in the book. test: out = xs.
    backward: dxs = dout * mask after a train-mode forward, dout after a test-mode one (the book's backward
    multiplies by whatever mask the last train-mode forward left).

    ``rng`` (keyword only, not in the book): a ``numpy.random.Generator`` or a seed for one, which makes the
    masks reproducible; by default the mask comes from ``np.random.rand``, as in the book.
    """

    def __init__(self, dropout_ratio: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        if not 0.0 <= dropout_ratio < 1.0:
            raise ValueError(f"TimeDropout.__init__: dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        super().__init__()
        self.dropout_ratio = dropout_ratio
        self.rng = rng if rng is None or isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.mask: Array | None = None
        self.train_flg = True
        self._trained: bool | None = None  # the mode of the last forward, which backward differentiates
        self._shape: tuple[int, ...] = ()

    def forward(self, xs: ArrayLike) -> Array:
        xa = _float(xs)
        self._shape, self._trained = xa.shape, bool(self.train_flg)
        if not self.train_flg:
            return xa.copy()  # a copy: the caller may write into the output
        draws = np.random.rand(*xa.shape) if self.rng is None else self.rng.random(xa.shape)
        scale = 1.0 / (1.0 - self.dropout_ratio)
        self.mask = (draws > self.dropout_ratio).astype(xa.dtype) * xa.dtype.type(scale)
        out: Array = xa * self.mask
        return out

    def backward(self, dout: ArrayLike) -> Array:
        if self._trained is None:
            raise not_ready("TimeDropout")
        check_dout("TimeDropout", dout, self._shape)
        d = np.asarray(dout)
        if not self._trained:
            return d.copy()
        if self.mask is None:  # unreachable after a train-mode forward; keeps the type checker honest
            raise not_ready("TimeDropout")
        dx: Array = d * self.mask
        return dx
