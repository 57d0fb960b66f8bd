"""Correct layers written in unusual ways: the oracle must pass every one of them (no false alarms).

Each follows the book's API exactly, never writes into or returns the caller's arrays, keeps the input's
floating dtype and uses the project's convention relu'(0) = 0. All are right in float64; those with
``float32=True`` (the default) are also accurate in float32. They deliberately avoid the library's helpers
so that they cannot share its mistakes.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from backprop.verify import ROWS
from tests.catalogue import CORRECT_RECORDS, Array, Correct, passes
from tests.catalogue.broken import Im2colPooling

# ==== MulLayer / AddLayer: other ways to undo broadcasting ===============================================


def _sum_to_by_strides(grad: Array, shape: tuple[int, ...]) -> Array:
    """The axes broadcasting repeated are exactly those with stride 0 in ``np.broadcast_to(zeros(shape))``."""
    view = np.broadcast_to(np.zeros(shape, dtype=grad.dtype), grad.shape)
    axes = tuple(
        i for i, (n, s) in enumerate(zip(view.shape, view.strides, strict=True)) if s == 0 and n != 1
    )
    reduced = np.add.reduce(grad, axis=axes, keepdims=True) if axes else grad.copy()
    return np.array(reduced.reshape(shape))


def _sum_to_by_padding(grad: Array, shape: tuple[int, ...]) -> Array:
    """Left-pad ``shape`` with ones, sum every axis that is 1 there (keepdims), then reshape."""
    padded = (1,) * (grad.ndim - len(shape)) + shape
    axes = tuple(i for i, n in enumerate(padded) if n == 1)
    return np.array(np.sum(grad, axis=axes, keepdims=True).reshape(shape))


def _sum_to_by_loop(grad: Array, shape: tuple[int, ...]) -> Array:
    """Chainer-style: drop leading axes one at a time, then fold each size-1 axis."""
    g = np.array(grad)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


@passes(against="mul", why="unbroadcast via zero strides + np.add.reduce")
class MulStrideTrick:
    """Caches only shapes and the other operand; unbroadcasts via zero strides and np.add.reduce."""

    def __init__(self) -> None:
        self.x: Array | None = None
        self.y: Array | None = None

    def forward(self, x: Array, y: Array) -> Array:
        self.x, self.y = np.asarray(x), np.asarray(y)
        return np.multiply(self.x, self.y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        d = np.asarray(dout)
        return _sum_to_by_strides(d * self.y, self.x.shape), _sum_to_by_strides(d * self.x, self.y.shape)


@passes(against="mul", why="einsum products, keepdims-sum + reshape")
class MulEinsum:
    """dx and dy via np.einsum over the broadcast result, summed by padding with keepdims."""

    def __init__(self) -> None:
        self.x: Array | None = None
        self.y: Array | None = None

    def forward(self, x: Array, y: Array) -> Array:
        self.x, self.y = x, y
        return np.asarray(x * y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        d = np.asarray(dout)
        full_y = np.broadcast_to(self.y, d.shape)
        full_x = np.broadcast_to(self.x, d.shape)
        dx = np.einsum("...,...->...", d, full_y)
        dy = np.einsum("...,...->...", d, full_x)
        return _sum_to_by_padding(dx, self.x.shape), _sum_to_by_padding(dy, self.y.shape)


@passes(against="add", why="keepdims-sum over left-padded axes + reshape")
class AddKeepdimsReshape:
    """Keeps no inputs, only their shapes; sums with keepdims over left-padded axes, then reshapes."""

    def __init__(self) -> None:
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def forward(self, x: Array, y: Array) -> Array:
        self.shapes = (np.shape(x), np.shape(y))
        return np.add(x, y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.shapes is not None
        d = np.asarray(dout)
        return _sum_to_by_padding(d, self.shapes[0]), _sum_to_by_padding(d, self.shapes[1])


@passes(against="add", why="Chainer-style sum_to loop")
class AddChainerSumTo:
    """Unbroadcasts with a Chainer-style loop; the no-broadcast case still returns fresh arrays."""

    def __init__(self) -> None:
        self.x_shape: tuple[int, ...] = ()
        self.y_shape: tuple[int, ...] = ()

    def forward(self, x: Array, y: Array) -> Array:
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return np.asarray(x + y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        return _sum_to_by_loop(dout, self.x_shape), _sum_to_by_loop(dout, self.y_shape)


# ==== Relu ==============================================================================================


@passes(against="relu", why="np.heaviside(x, 0) * dout")
class ReluHeaviside:
    """dx = heaviside(x, 0) * dout; forward is np.maximum."""

    def __init__(self) -> None:
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.asarray(np.maximum(x, 0).astype(x.dtype))

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        return np.asarray(np.heaviside(self.x, 0).astype(self.x.dtype) * dout)


@passes(against="relu", why="(x > 0) * dout")
class ReluBoolProduct:
    """forward x * (x > 0), backward (x > 0) * dout: booleans as 0/1 factors."""

    def __init__(self) -> None:
        self.positive: Array | None = None

    def forward(self, x: Array) -> Array:
        self.positive = x > 0
        return np.asarray(x * self.positive)

    def backward(self, dout: Array) -> Array:
        assert self.positive is not None
        return np.asarray(self.positive * dout)


@passes(against="relu", why="mask from the cached output, np.copyto")
class ReluMaskFromOutput:
    """Caches only the output; out > 0 exactly when x > 0, so it serves as the mask."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = np.where(x > 0, x, np.zeros_like(x))
        return self.out.copy()

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        dx = np.zeros_like(np.asarray(dout))
        np.copyto(dx, dout, where=self.out > 0)
        return dx


# ==== Sigmoid ===========================================================================================


@passes(against="sigmoid", why="exp(-|x|) / (1 + exp(-|x|))**2")
class SigmoidStableDerivative:
    """dx = dout * e / (1 + e)^2 with e = exp(-|x|): the derivative taken from x, overflow-free."""

    def __init__(self) -> None:
        self.e: Array | None = None

    def forward(self, x: Array) -> Array:
        self.e = np.exp(-np.abs(x))
        one = np.ones((), dtype=self.e.dtype)
        return np.asarray(np.where(x >= 0, one / (one + self.e), self.e / (one + self.e)))

    def backward(self, dout: Array) -> Array:
        assert self.e is not None
        return np.asarray(dout * (self.e / (1 + self.e) ** 2))


@passes(against="sigmoid", why="(1 + tanh(x/2)) / 2")
class SigmoidTanhIdentity:
    """sigmoid(x) = (1 + tanh(x / 2)) / 2, and sigmoid'(x) = (1 - tanh(x / 2)^2) / 4."""

    def __init__(self) -> None:
        self.th: Array | None = None

    def forward(self, x: Array) -> Array:
        self.th = np.tanh(x / 2)
        return np.asarray((1 + self.th) / 2)

    def backward(self, dout: Array) -> Array:
        assert self.th is not None
        return np.asarray(dout * ((1 - self.th * self.th) / 4))


@passes(against="sigmoid", why="the book's Sigmoid, overflow silenced")
class SigmoidBook:
    """The book's Sigmoid verbatim; exp(-x) overflows to inf for x < -709, but 1 / inf = 0 is right."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        with np.errstate(over="ignore"):
            self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return np.asarray(dout * self.out * (1 - self.out))


# ==== Affine ============================================================================================


class _AffineState:
    """The book's Affine constructor and attributes; subclasses write forward and backward their own way."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.dW: Array | None = None
        self.db: Array | None = None


@passes(against="affine", why="np.tensordot on un-flattened x")
class AffineTensordot(_AffineState):
    """Never flattens x: W is viewed as (*x.shape[1:], M) and contracted with np.tensordot."""

    def _W_nd(self, x: Array) -> Array:
        return self.W.reshape(*x.shape[1:], self.W.shape[1])

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.asarray(np.tensordot(x, self._W_nd(x), axes=x.ndim - 1) + self.b)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        x = self.x
        self.dW = np.tensordot(x, dout, axes=([0], [0])).reshape(self.W.shape)
        self.db = np.add.reduce(dout, axis=0)
        return np.asarray(np.tensordot(dout, self._W_nd(x), axes=([1], [x.ndim - 1])))


@passes(against="affine", why="np.einsum")
class AffineEinsum:
    """Flattens x, and writes every product as np.einsum."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.x_shape: tuple[int, ...] = ()
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.asarray(np.einsum("nd,dm->nm", self.x, self.W) + self.b)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = np.einsum("nd,nm->dm", self.x, dout)
        self.db = np.einsum("nm->m", dout)
        return np.asarray(np.einsum("nm,dm->nd", dout, self.W).reshape(self.x_shape))


@passes(against="affine", why="per-sample loop of outer products")
class AffineOuterLoop(_AffineState):
    """One sample at a time: dW accumulates outer products, db accumulates rows of dout."""

    def forward(self, x: Array) -> Array:
        self.x = x
        rows = [xi.ravel() @ self.W + self.b for xi in x]
        return np.stack(rows)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dW = np.zeros_like(self.W)
        db = np.zeros_like(self.b)
        dx = np.empty_like(self.x)
        for n, (xi, gi) in enumerate(zip(self.x, dout, strict=True)):
            dW += np.outer(xi.ravel(), gi)
            db += gi
            dx[n] = (self.W @ gi).reshape(xi.shape)
        self.dW, self.db = dW, db
        return dx


# ==== SoftmaxWithLoss ===================================================================================


def _labels_to_one_hot(t: Array, x: Array) -> Array:
    t = np.asarray(t)
    if t.shape == x.shape:
        return np.array(t, dtype=x.dtype)
    hot = np.zeros_like(x)
    np.put_along_axis(hot, t[:, None], 1, axis=1)
    return hot


def _logsumexp(x: Array) -> Array:
    m = np.max(x, axis=1, keepdims=True)
    return np.asarray(m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True)))


class _SoftmaxLossState:
    """The book's SoftmaxWithLoss attributes; subclasses write forward and backward their own way."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None


# loss = logsumexp(x) - x_t adds the max back before subtracting: in float32 that cancellation costs
# eps32 * |x| (3e-5 at |x| = 512); the softmax_with_loss row declares that condition number
@passes(against="softmax_with_loss", why="one-hot + logsumexp; float32 loses eps*|x| to cancellation")
class SoftmaxLossOneHotLogsumexp(_SoftmaxLossState):
    """Labels become one-hot; loss = mean(logsumexp(x) - sum(t * x)); dx = dout * (y - t) / N."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = _labels_to_one_hot(t, x)
        lse = _logsumexp(x)
        self.y = np.exp(x - lse)
        self.loss = np.mean(np.sum(self.t * (lse - x), axis=1))
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        n = self.y.shape[0]
        return np.asarray((self.y - self.t) * (dout / n)).astype(self.y.dtype, copy=False)


@passes(against="softmax_with_loss", why="dx[range(N), t] -= 1")
class SoftmaxLossIndexSubtract(_SoftmaxLossState):
    """The book's chapter-5 code (common/layers.py): subtract 1 at the label index, then scale by dout / N."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = np.asarray(t)
        shifted = x - x.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.y = np.exp(logp)
        n = x.shape[0]
        picked = (self.t * logp).sum(axis=1) if self.t.shape == x.shape else logp[np.arange(n), self.t]
        self.loss = -picked.sum() / n
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        n = self.y.shape[0]
        if self.t.shape == self.y.shape:
            dx = self.y - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(n), self.t] -= 1
        dx *= self.y.dtype.type(dout)
        dx /= n
        return dx


@passes(against="softmax_with_loss", why="general log-softmax VJP; x - logsumexp(x) cancels in float32")
class SoftmaxLossLogSoftmaxVjp(_SoftmaxLossState):
    """Backward is the general log-softmax VJP: g = -t * dout / N, dx = g - y * sum(g)."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = _labels_to_one_hot(t, x)
        logp = x - _logsumexp(x)
        self.y = np.exp(logp)
        self.loss = -np.einsum("nc,nc->", self.t, logp) / x.shape[0]
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        g = -self.t * (dout / self.t.shape[0])
        return np.asarray(g - self.y * g.sum(axis=1, keepdims=True)).astype(self.y.dtype, copy=False)


# ==== Convolution, Pooling, im2col/col2im ==================================================================


def _geometry_out(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1


@passes(against="convolution", why="sliding_window_view + einsum; np.add.at")
class ConvEinsumWindows:
    """Convolution over ``sliding_window_view`` windows with ``einsum``; dx added back window by window
    with ``np.add.at`` on index arrays, not through col2im."""

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.x: Array | None = None
        self.win: Array | None = None
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        p, s = self.pad, self.stride
        _, _, fh, fw = self.W.shape
        img = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(img, (fh, fw), axis=(2, 3))[:, :, ::s, ::s]
        self.x, self.win = x, win
        return np.asarray(np.einsum("ncyxij,fcij->nfyx", win, self.W) + self.b[None, :, None, None])

    def backward(self, dout: Array) -> Array:
        assert self.x is not None and self.win is not None
        p, s = self.pad, self.stride
        n, c, h, w = self.x.shape
        _, _, fh, fw = self.W.shape
        self.db = dout.sum(axis=(0, 2, 3))
        self.dW = np.einsum("nfyx,ncyxij->fcij", dout, self.win)
        dwin = np.einsum("nfyx,fcij->ncyxij", dout, self.W)
        oh, ow = dout.shape[2:]
        rows = (np.arange(oh)[:, None] * s + np.arange(fh)[None, :])[:, None, :, None]
        cols = (np.arange(ow)[:, None] * s + np.arange(fw)[None, :])[None, :, None, :]
        img = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dout.dtype)
        np.add.at(img, (slice(None), slice(None), rows, cols), dwin)
        return np.asarray(img[:, :, p : p + h, p : p + w], dtype=self.x.dtype).copy()


@passes(against="pooling", why="a Python loop over every window")
class PoolingLoops:
    """Max pooling with explicit loops over every window; padding never chosen; ties to the first max."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.ph, self.pw, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x: Array | None = None
        self.where: dict[tuple[int, int, int, int], tuple[int, int]] = {}

    def _window(self, x: Array, n: int, c: int, y: int, z: int) -> tuple[float, tuple[int, int]]:
        best, at = -np.inf, (-1, -1)
        for i in range(self.ph):
            for j in range(self.pw):
                r, q = y * self.stride + i - self.pad, z * self.stride + j - self.pad
                if 0 <= r < x.shape[2] and 0 <= q < x.shape[3] and (at == (-1, -1) or x[n, c, r, q] > best):
                    best, at = x[n, c, r, q], (r, q)
        return best, at

    def forward(self, x: Array) -> Array:
        n, c, h, w = x.shape
        oh = _geometry_out(h, self.ph, self.stride, self.pad)
        ow = _geometry_out(w, self.pw, self.stride, self.pad)
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        self.x, self.where = x, {}
        for key in np.ndindex(n, c, oh, ow):
            out[key], self.where[key] = self._window(x, *key)
        return out

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dx = np.zeros_like(self.x)
        for (n, c, y, z), (r, q) in self.where.items():
            dx[n, c, r, q] += dout[n, c, y, z]
        return dx


@passes(against="pooling", why="a tie's dout split evenly: another subgradient")
class PoolingSplitsTies(Im2colPooling):
    """A tie's dout split evenly among the tied maxima: another valid subgradient, passed with a note."""

    def backward(self, dout: Array) -> Array:
        assert self.windows is not None
        d = dout.transpose(0, 2, 3, 1).reshape(-1, 1)
        mask = self.windows == self.windows.max(axis=1, keepdims=True)
        return self._scatter(mask * d / mask.sum(axis=1, keepdims=True).astype(d.dtype))


# ==== chapter 6: Dropout and batch normalization written other ways ======================================

_EPS = 10e-7


@passes(against="dropout", why="float 0/1 mask from a Generator of its own")
class DropoutFloatMask:
    """The mask kept as 0.0 / 1.0 floats in x's dtype, drawn from a Generator of its own rather than
    np.random; test mode scales by 1 - ratio, and so does backward after it."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None
        self.scale: float | None = None
        self.rng = np.random.default_rng()

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        if not train_flg:
            self.scale = 1.0 - self.dropout_ratio
            return np.asarray(x * self.scale)
        self.scale = None
        self.mask = (self.rng.random(np.shape(x)) >= self.dropout_ratio).astype(np.asarray(x).dtype)
        return np.asarray(x * self.mask)

    def backward(self, dout: Array) -> Array:
        if self.scale is not None:
            return np.asarray(dout * self.scale)
        return np.asarray(dout * self.mask)


@passes(against="dropout", why="boolean mask kept as self.keep, np.where")
class DropoutRenamedMask:
    """The boolean mask kept as ``self.keep``: the row finds a layer's only boolean array."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.keep: Array | None = None
        self.train = True

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.train = train_flg
        if not train_flg:
            return np.asarray(x * (1.0 - self.dropout_ratio))
        self.keep = np.random.uniform(size=np.shape(x)) > self.dropout_ratio
        return np.where(self.keep, x, np.zeros_like(x))

    def backward(self, dout: Array) -> Array:
        if not self.train:
            return np.asarray(dout * (1.0 - self.dropout_ratio))
        return np.where(self.keep, dout, np.zeros_like(dout))


class _BatchNormState:
    """The book's constructor and what both batch normalizations below keep between forward and backward."""

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        momentum: float = 0.9,
        running_mean: Array | None = None,
        running_var: Array | None = None,
    ) -> None:
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.xn: Array | None = None
        self.std: Array | None = None
        self.train = True
        self.dgamma: Array | None = None
        self.dbeta: Array | None = None


@passes(against="batch_normalization", why="the one-line dx = gamma/std/N (N dxn - sum dxn - xn sum(dxn xn))")
class BatchNormCompact(_BatchNormState):
    """The one-line train-mode backward: dx = (gamma / std / N) (N dxn - sum(dxn) - xn sum(dxn xn)), with
    dxn = dout (gamma applied outside); statistics by np.mean / np.var; no xc kept."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        x2 = x.reshape(len(x), -1)
        if train_flg:
            mean, var = np.mean(x2, axis=0), np.var(x2, axis=0)
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mean
            self.running_var = m * self.running_var + (1 - m) * var
        else:
            mean, var = self.running_mean, self.running_var
        self.train, self.std = train_flg, np.sqrt(var + _EPS)
        self.xn = (x2 - mean) / self.std
        return np.asarray(self.xn * self.gamma + self.beta, dtype=x.dtype).reshape(x.shape)

    def backward(self, dout: Array) -> Array:
        assert self.xn is not None and self.std is not None
        g = dout.reshape(len(dout), -1)
        n = g.shape[0]
        self.dbeta, self.dgamma = g.sum(axis=0), (g * self.xn).sum(axis=0)
        if self.train:
            inner = n * g - g.sum(axis=0) - self.xn * (g * self.xn).sum(axis=0)
            dx = (self.gamma / self.std / n) * inner
        else:
            dx = self.gamma / self.std * g
        return np.asarray(dx, dtype=dout.dtype).reshape(dout.shape)


@passes(against="channel_batch_normalization", why="keepdims reductions over (0, 2, 3), compact backward")
class ChannelBatchNormAxes(_BatchNormState):
    """Per-channel batch normalization with the reductions over axes (0, 2, 3) kept 4-D (no transpose),
    and the compact backward."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        axes = (0, 2, 3)
        assert self.running_mean is not None and self.running_var is not None
        if train_flg:
            mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mean.ravel()
            self.running_var = m * self.running_var + (1 - m) * var.ravel()
        else:
            mean, var = self.running_mean[:, None, None], self.running_var[:, None, None]
        self.train, self.std = train_flg, np.sqrt(var + _EPS)
        self.xn = (x - mean) / self.std
        return np.asarray(self.gamma[:, None, None] * self.xn + self.beta[:, None, None], dtype=x.dtype)

    def backward(self, dout: Array) -> Array:
        assert self.xn is not None and self.std is not None
        axes = (0, 2, 3)
        self.dbeta, self.dgamma = dout.sum(axis=axes), (dout * self.xn).sum(axis=axes)
        scale = self.gamma[:, None, None] / self.std
        if not self.train:
            return np.asarray(scale * dout, dtype=dout.dtype)
        m = dout.size // dout.shape[1]
        inner = dout - dout.mean(axis=axes, keepdims=True)
        inner = inner - self.xn * (dout * self.xn).mean(axis=axes, keepdims=True)
        return np.asarray(scale * inner, dtype=dout.dtype) if m else np.zeros_like(dout)


# ==== the list: the library's own layers, then the unusual ones of both books ============================

from tests.catalogue import broken, nlp  # noqa: E402  (their classes' records, after this module's)

CORRECT: list[Correct] = [
    # the library's own layers, one per registry row
    *(
        Correct(
            layer=row.layer,
            against=row.name,
            why=f"the library's {row.layer.__name__}",
            float32="float32" in row.dtypes,
        )
        for row in ROWS
    ),
    *CORRECT_RECORDS.of(sys.modules[__name__], broken),
    *nlp.CORRECT,
]
