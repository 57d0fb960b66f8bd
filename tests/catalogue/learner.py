"""Layers as readers of the books actually write them, each paired with the verdict the oracle must give.

Unlike ``broken.py`` (one clean mistake per class) these are written the learners' way: the book's naive
code pasted as is, masks built in place, ``'f'`` dtypes from book 2, JAX instead of NumPy, odd attribute
names. Several are right in a narrower sense than the oracle checks by default (no broadcasting, 2-D input
only, a different subgradient at relu's kink, the book's ``1e-7`` in the log); for those the catalogue
lists both the failure and the ``verify()`` options under which the same class passes.

Each class carries its :class:`tests.catalogue.Expect` records as ``@expect`` decorators, one per verdict;
``LEARNER`` lists them in the classes' order (then the one class of ``broken.py`` that has a learner's
verdict too); ``training.TRAINING`` uses the same record.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backprop import MultiLayerNet, MultiLayerNetExtend, Relu, TwoLayerNet
from backprop.nlp import cbow as nlp_cbow
from backprop.nlp import layers as nlp_layers
from backprop.verify.loader import load_class
from tests.catalogue import LEARNER_RECORDS, Array, Expect, broken, codes, expect

# ==== the book's helper functions, as learners paste them from common/functions.py =======================


def sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))


def softmax(x: Array) -> Array:
    x = x - np.max(x, axis=-1, keepdims=True)  # guard against overflow (a new array: x is rebound)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y: Array, t: Array) -> Any:
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)

    # one-hot targets become label indices
    if t.size == y.size:
        t = t.argmax(axis=1)

    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


# ==== MulLayer: book 1, ch05/layer_naive.py ===============================================================


# mul: the book's naive MulLayer is right without broadcasting
@expect(
    against="mul",
    why="book 1 ch05 naive MulLayer: dx = dout * y, never unbroadcast",
    verdict="fail",
    diagnoses=codes("unbroadcast"),
    passes_without=("broadcast",),
)
@expect(
    against="mul",
    why="the same, checked on same-shape inputs only",
    verdict="pass",
    options={"without": ("broadcast",)},
)
class MulLayer:
    """The book's naive MulLayer: ``dx = dout * y`` is never summed back to x's shape, so it is right
    exactly when x and y have the same shape."""

    def __init__(self) -> None:
        self.x: Array | None = None
        self.y: Array | None = None

    def forward(self, x: Array, y: Array) -> Array:
        self.x = x
        self.y = y
        out = x * y

        return out

    def backward(self, dout: Array) -> tuple[Array, Array]:
        dx = dout * self.y  # swap x and y
        dy = dout * self.x

        return dx, dy


# ==== Relu ==============================================================================================


@expect(
    against="relu",
    why="mask = (x < 0): relu'(0) = 1, a valid subgradient; the notes name both conventions",
    verdict="pass",
    notes=("relu'(0) = 0", "uses relu'(0) = 1"),
)
@expect(
    against="relu",
    why="mask = (x < 0) under strict: the project's relu'(0) = 0 is required",
    verdict="fail",
    diagnoses=codes("kink"),
    options={"strict": True},
)
class ReluLessThanMask:
    """``mask = (x < 0)``: relu'(0) = 1 instead of the project's 0; a valid subgradient, so it passes by
    default with a note, and fails under ``strict=True``. Otherwise careful: copies, never writes in place."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x < 0  # BUG
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


@expect(
    against="relu",
    why="x[x <= 0] = 0 in the caller's x, and backward forgets dout",
    verdict="fail",
    failures=2,
    diagnoses=codes("in_place", "ignores_dout"),
)
class ReluTwoBugs:
    """Two mistakes: forward zeroes the caller's x in place (``x[x <= 0] = 0``) and returns it, and
    backward returns relu'(x) without multiplying by dout."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        x[x <= 0] = 0
        return x

    def backward(self, dout: Array) -> Array:
        dx = np.ones_like(dout)
        dx[self.mask] = 0
        return dx


@expect(against="relu", why="forward has no return", verdict="fail", diagnoses=codes("returns_none"))
class my_relu:  # the learner's own name
    """forward builds ``out`` and forgets to return it."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> None:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


@expect(
    against="relu",
    why="a typo in an attribute name raises AttributeError in backward",
    verdict="fail",
    diagnoses=codes("exception"),
)
class ReluAttributeTypo:
    """forward stores ``self.mask``, backward reads ``self.masks``: an AttributeError on every backward."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: Array) -> Array:
        dout = dout.copy()
        dout[self.masks] = 0  # type: ignore[attr-defined]  # BUG
        return dout


@expect(
    against="relu", why="forward casts to float32 in a float64 run", verdict="fail", diagnoses=codes("dtype")
)
class ReluFloat32Out:
    """Casts its output to float32 "to save memory", whatever the input dtype; dx is right."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        out = np.maximum(x, 0).astype(np.float32)  # BUG
        return out

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


@expect(against="relu", why="jnp.maximum / jnp.where, x64 on, JAX arrays", verdict="pass")
class JaxRelu:
    """Correct, in jax.numpy, returning JAX arrays; float64 because it turns on x64 around its own work."""

    def __init__(self) -> None:
        self.x: jax.Array | None = None

    def forward(self, x: Array) -> jax.Array:
        with jax.enable_x64(True):
            self.x = jnp.asarray(x)
            return jnp.maximum(self.x, 0)

    def backward(self, dout: Array) -> jax.Array:
        assert self.x is not None
        with jax.enable_x64(True):
            return jnp.where(self.x > 0, dout, 0.0)


# ==== Sigmoid ===========================================================================================


@expect(
    against="sigmoid",
    why="book 1's 1 / (1 + np.exp(-x)): overflow warnings, right values",
    verdict="pass",
    notes=("overflow",),
)
class BookSigmoid:
    """The book's Sigmoid: ``1 / (1 + np.exp(-x))`` overflows (with a RuntimeWarning) for x < -709, but
    1 / inf = 0 is the right value, so it passes; the warning must be summarised in the notes."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        out = 1 / (1 + np.exp(-x))
        self.out = out
        return out

    def backward(self, dout: Array) -> Array:
        dx = dout * (1.0 - self.out) * self.out

        return dx


@expect(against="sigmoid", why="jnp, x64 on, JAX arrays", verdict="pass")
class JaxSigmoid:
    """Correct, in jax.numpy, returning JAX arrays; float64 because it turns on x64 around its own work.
    exp(-x) overflows to inf silently in JAX, and 1 / inf = 0."""

    def __init__(self) -> None:
        self.out: jax.Array | None = None

    def forward(self, x: Array) -> jax.Array:
        with jax.enable_x64(True):
            self.out = 1 / (1 + jnp.exp(-jnp.asarray(x)))
            return self.out

    def backward(self, dout: Array) -> jax.Array:
        assert self.out is not None
        with jax.enable_x64(True):
            return dout * (1.0 - self.out) * self.out


@expect(
    against="sigmoid",
    why="jnp without x64: float32 results in a float64 run",
    verdict="fail",
    diagnoses=codes("dtype"),
)
@expect(against="sigmoid", why="jnp without x64, in a float32 run", verdict="pass", dtype="float32")
class JaxSigmoidDefaultConfig:
    """The same in jax.numpy without enabling x64: JAX silently computes in float32, so a float64 run
    gets float32 arrays back (dtype) while a float32 run passes."""

    def __init__(self) -> None:
        self.out: jax.Array | None = None

    def forward(self, x: Array) -> jax.Array:
        self.out = 1 / (1 + jnp.exp(-jnp.asarray(x)))
        return self.out

    def backward(self, dout: Array) -> jax.Array:
        assert self.out is not None
        return jnp.asarray(dout) * (1.0 - self.out) * self.out


# ==== Affine ============================================================================================


@expect(
    against="affine",
    why="book 2's Affine never flattens N-D x",
    verdict="fail",
    any_of=codes("exception", "shape"),
    passes_without=("nd",),
)
@expect(against="affine", why="book 2's Affine on 2-D x only", verdict="pass", options={"without": ("nd",)})
class Book2Affine:
    """Book 2's Affine (params/grads, gradients written with ``[...]``) has no flatten: right for 2-D x,
    wrong (an exception or a wrong shape) once x has more than two axes."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        W, b = self.params
        out = np.dot(x, W) + b
        self.x = x
        return out

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        dx = np.dot(dout, W.T)
        dW = np.dot(self.x.T, dout)
        db = np.sum(dout, axis=0)

        self.grads[0][...] = dW
        self.grads[1][...] = db
        return dx


@expect(against="affine", why="gradients stored as d_w, d_b", verdict="fail", diagnoses=codes("renamed"))
@expect(
    against="affine",
    why="gradients stored as d_w, d_b, named with grad_names",
    verdict="pass",
    options={"grad_names": {"dW": "d_w", "db": "d_b"}},
)
class Affine2:
    """The book's Affine, but the gradients are stored as ``self.d_w`` and ``self.d_b`` (PEP 8 names)."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.original_x_shape: tuple[int, ...] = ()
        self.d_w: Array | None = None
        self.d_b: Array | None = None

    def forward(self, x: Array) -> Array:
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        out = np.dot(self.x, self.W) + self.b
        return out

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dx = np.dot(dout, self.W.T)
        self.d_w = np.dot(self.x.T, dout)
        self.d_b = np.sum(dout, axis=0)
        dx = dx.reshape(*self.original_x_shape)
        return dx


@expect(
    against="affine",
    why="book 2 'f' dtype: float32 results in a float64 run",
    verdict="fail",
    diagnoses=codes("dtype"),
)
@expect(against="affine", why="book 2 'f' dtype in a float32 run", verdict="pass", dtype="float32")
class AffineF:
    """Book-2 style with the book's ``'f'`` dtype everywhere: grads allocated as float32, outputs cast
    with ``.astype('f')``. Right in a float32 run; a float64 run gets float32 back (dtype)."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros(W.shape, dtype="f"), np.zeros(b.shape, dtype="f")]
        self.x: Array | None = None
        self.x_shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        W, b = self.params
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        out = (np.dot(self.x, W) + b).astype("f")
        return out

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        dx = np.dot(dout, W.T).astype("f")
        self.grads[0][...] = np.dot(self.x.T, dout)
        self.grads[1][...] = np.sum(dout, axis=0)
        return dx.reshape(self.x_shape)


@expect(against="affine", why="backward returns None", verdict="fail", diagnoses=codes("returns_none"))
class AffineNoReturn:
    """backward sets dW and db and returns nothing: "the gradients are in the attributes"."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.original_x_shape: tuple[int, ...] = ()
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        out = np.dot(self.x, self.W) + self.b
        return out

    def backward(self, dout: Array) -> None:
        assert self.x is not None
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        dx = dx.reshape(*self.original_x_shape)


# ==== SoftmaxWithLoss ===================================================================================


@expect(
    against="softmax_with_loss",
    why="book 1: dx = (y - t) / batch_size ignores dout; log(y + 1e-7)",
    verdict="fail",
    diagnoses=codes("ignores_dout", "epsilon"),
)
@expect(
    against="softmax_with_loss",
    why="book 1 with the epsilon allowed: still ignores dout",
    verdict="fail",
    diagnoses=codes("ignores_dout"),
    options={"allow": ("epsilon",)},
)
class BookSoftmaxWithLoss:
    """Book 1's SoftmaxWithLoss: ``cross_entropy_error`` adds 1e-7 inside the log (epsilon) and backward
    returns ``(y - t) / batch_size`` whatever dout is (ignores_dout)."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)

        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot targets
            dx = (self.y - self.t) / batch_size
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
            dx = dx / batch_size

        return dx


@expect(
    against="softmax_with_loss",
    why="dout honoured; log(y + 1e-7) is the only flaw",
    verdict="fail",
    diagnoses=codes("epsilon"),
)
@expect(
    against="softmax_with_loss",
    why="dout honoured, the epsilon allowed; the note says so",
    verdict="pass",
    notes=("epsilon",),
    options={"allow": ("epsilon",)},
)
class SoftmaxWithLossEps:
    """Book 1's SoftmaxWithLoss with dout honoured: the only flaw left is the 1e-7 inside the log."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)

        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot targets
            dx = (self.y - self.t) * dout / batch_size
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
            dx = dx * dout / batch_size

        return dx


@expect(
    against="softmax_with_loss",
    why="x -= x.max(...) writes into the caller's x",
    verdict="fail",
    diagnoses=codes("in_place"),
)
class SoftmaxWithLossInPlace:
    """Subtracts the row max from the caller's x in place (``x -= ...``); the numbers are all right."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        x -= x.max(axis=1, keepdims=True)  # BUG: overflow guard, in place "to save memory"
        log_y = x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))
        self.y = np.exp(log_y)
        if t.size == x.size:  # one-hot targets become labels, as in book 2
            t = t.argmax(axis=1)
        self.t = t
        batch_size = x.shape[0]
        self.loss = -np.sum(log_y[np.arange(batch_size), t]) / batch_size
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        dx = dx * dout / batch_size
        return dx


# ==== a module that makes its warnings errors ======================================================


def _loaded(name: str) -> type:
    """A class of ``fixtures/warnings/warnings_as_errors.py``, loaded as ``--layer`` loads it: the loader
    records the warning filters its module installs at import (here ``filterwarnings("error")``), which then
    hold inside every call into the class. ``sys.path`` is left as it was."""
    path = list(sys.path)
    try:
        return load_class(f"{Path(__file__).parents[1] / 'fixtures/warnings/warnings_as_errors.py'}:{name}")
    finally:
        sys.path[:] = path


BookSigmoidWarningsAsErrors = expect(
    against="sigmoid",
    why=(
        "the same code in a module that sets warnings.filterwarnings('error'): its overflow raises "
        "RuntimeWarning, in its own process and under the oracle alike"
    ),
    verdict="fail",
    failures=3,
    diagnoses=codes("exception"),
)(_loaded("BookSigmoidWarningsAsErrors"))
ExpSigmoidWarningsAsErrors = expect(
    against="sigmoid",
    why="exp(x) / (1 + exp(x)) in that module: the overflow raises where it would give inf / inf = NaN",
    verdict="fail",
    diagnoses=codes("exception"),
)(_loaded("ExpSigmoidWarningsAsErrors"))
StableSigmoidWarningsAsErrors = expect(
    against="sigmoid",
    why="an overflow-free sigmoid in that module: the filter it installs causes no false alarm",
    verdict="pass",
)(_loaded("StableSigmoidWarningsAsErrors"))


# ==== im2col / col2im: book 1, common/util.py, as learners rewrite it =====================================


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1


def book_im2col(x: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Array:
    """The book's im2col: rows (n, y, x), columns (c, i, j)."""
    N, C, H, W = x.shape
    out_h, out_w = _out_size(H, filter_h, stride, pad), _out_size(W, filter_w, stride, pad)
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=x.dtype)
    for y in range(filter_h):
        for x_ in range(filter_w):
            col[:, :, y, x_, :, :] = img[
                :, :, y : y + stride * out_h : stride, x_ : x_ + stride * out_w : stride
            ]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im_sums(
    col: Array, input_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> tuple[Array, Array]:
    """The padded image with every window's values added in, and how many windows reached each pixel."""
    N, C, H, W = input_shape
    out_h, out_w = _out_size(H, filter_h, stride, pad), _out_size(W, filter_w, stride, pad)
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    count = np.zeros_like(img)
    for y in range(filter_h):
        for x_ in range(filter_w):
            window = (
                slice(None),
                slice(None),
                slice(y, y + stride * out_h, stride),
                slice(x_, x_ + stride * out_w, stride),
            )
            img[window] += col[:, :, y, x_, :, :]
            count[window] += 1
    return img, count


@expect(
    against="col2im",
    why="img / count: 0 / 0 where no window reaches; no exp in the code",
    verdict="fail",
    failures=2,
    diagnoses=codes("zero_division"),
    words=("divides zero by zero", "never averages"),
    not_words=("subtract the max",),
)
class Col2imAverages:
    """col2im that averages the overlapping windows (img / count) instead of adding them: the count is 0
    where no window reaches (a stride larger than the filter, or a border the windows never cover), and
    there 0 / 0 is NaN. No exp anywhere."""

    def __init__(
        self, input_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
    ) -> None:
        self.input_shape, self.geometry = input_shape, (filter_h, filter_w, stride, pad)

    def forward(self, col: Array) -> Array:
        img, count = col2im_sums(col, self.input_shape, *self.geometry)
        img = img / count  # BUG
        pad, (H, W) = self.geometry[3], self.input_shape[2:]
        return img[:, :, pad : H + pad, pad : W + pad]

    def backward(self, dout: Array) -> Array:
        return book_im2col(dout, *self.geometry)


@expect(
    against="im2col",
    why="backward's col2im returns the padded image",
    verdict="fail",
    diagnoses=codes("shape"),
    passes_without=("padding",),
    words=("padding was not cropped", "img[:, :, pad:H + pad, pad:W + pad]"),
    not_words=("reshape(x.shape)",),
)
class Im2colUncroppedBackward:
    """im2col as a layer whose backward is a col2im that adds the windows right but returns the padded
    image: dx is (H + 2*pad, W + 2*pad), which no reshape can fit into x."""

    def __init__(self, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> None:
        self.geometry = (filter_h, filter_w, stride, pad)
        self.shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        return book_im2col(x, *self.geometry)

    def backward(self, dout: Array) -> Array:
        img, _ = col2im_sums(dout, self.shape, *self.geometry)
        return img  # BUG: the padding border is never cropped


# ==== BatchNormalization: book 1, common/layers.py, with the learner's eps ================================


class _BatchNorm:
    """The book's BatchNormalization (backward after a test-mode forward defined); ``std`` holds the eps."""

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
        self.input_shape: tuple[int, ...] = ()
        self.train = True
        self.xc: Any = None
        self.xn: Any = None
        self.std: Any = None
        self.dgamma: Array | None = None
        self.dbeta: Array | None = None

    def std_of(self, var: Array) -> Any:
        return np.sqrt(var + 10e-7)

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.input_shape, self.train = x.shape, train_flg
        x = x.reshape(x.shape[0], -1)
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc**2, axis=0)
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xc, var = x - self.running_mean, self.running_var
        self.std = self.std_of(var)
        self.xc, self.xn = xc, xc / self.std
        return (self.gamma * self.xn + self.beta).reshape(*self.input_shape)

    def backward(self, dout: Array) -> Array:
        dout = dout.reshape(dout.shape[0], -1)
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        if self.train:
            batch_size = dout.shape[0]
            dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
            dvar = 0.5 * dstd / self.std
            dxc += (2.0 / batch_size) * self.xc * dvar
            dxc -= np.sum(dxc, axis=0) / batch_size
        return dxc.reshape(*self.input_shape)


@expect(
    against="batch_normalization",
    why="np.sqrt(var): 0 / 0 on a constant column, and eps = 0 elsewhere",
    verdict="fail",
    failures=4,
    diagnoses=codes("zero_division", "epsilon"),
    words=("divides zero by zero", "eps = 0", "np.sqrt(var + 1e-06)"),
    not_words=("subtract the max", "no simple pattern"),
)
class BatchNormNoEps(_BatchNorm):
    """``np.sqrt(var)``, no eps: a column whose values are all equal has var = 0, and xc / std is 0 / 0."""

    def std_of(self, var: Array) -> Any:
        return np.sqrt(var)  # BUG


@expect(
    against="batch_normalization",
    why="eps = 1e-7, not the book's 10e-7",
    verdict="fail",
    diagnoses=codes("epsilon"),
    words=("eps = 1e-07", "--eps 1e-07"),
    not_words=("[scale]", "no simple pattern"),
)
@expect(against="batch_normalization", why="checked at its own eps", verdict="pass", options={"eps": 1e-7})
class BatchNormEps1e7(_BatchNorm):
    """``np.sqrt(var + 1e-7)``: the book's 10e-7 read as 1e-7 (it is 1e-6). Right at its own eps."""

    def std_of(self, var: Array) -> Any:
        return np.sqrt(var + 1e-7)  # BUG


# ==== MatMul: book 2, common/layers.py ====================================================================


class _MatMul:
    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        (W,) = self.params
        self.x = x
        return np.dot(x, W)


@expect(
    against="matmul",
    why="np.sum(x.T @ dout, axis=0) broadcast into grads[0]",
    verdict="fail",
    diagnoses=codes("shape"),
    words=("summed over axis 0",),
    not_words=("[scale]",),
)
class MatMulDwSummedAgain(_MatMul):
    """dW = x.T @ dout summed once more over axis 0 ("sum over the batch"), which ``grads[0][...] =``
    broadcasts back over W's rows. On a batch whose rows are equal it reads as N times dW."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0][...] = np.sum(np.dot(self.x.T, dout), axis=0)  # BUG
        return np.dot(dout, W.T)


@expect(
    against="matmul",
    why="outer(sum x, sum dout): N times dW only on a batch of equal rows",
    verdict="fail",
    passes_without=("batch",),
    not_words=("[scale]", "Divide by the batch size"),
)
class MatMulOuterOfSums(_MatMul):
    """dW as the outer product of x and dout each summed over the batch: right for a batch of one, and on a
    batch of equal rows exactly N times dW, which is no constant factor."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0][...] = np.outer(np.sum(self.x, axis=0), np.sum(dout, axis=0))  # BUG
        return np.dot(dout, W.T)


@expect(
    against="matmul",
    why="dx = dout @ W: raises unless W is square, wrong there",
    verdict="fail",
    failures=2,
    diagnoses=codes("exception", "transpose"),
    words=("with W transposed",),
    not_words=("[scale]", "summed over axis"),
)
class MatMulDxNoTranspose(_MatMul):
    """dx = dout @ W without the .T: an exception unless W is square, and there a wrong dx."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0][...] = np.dot(self.x.T, dout)
        return np.dot(dout, W)  # BUG


# ==== SoftmaxWithLoss on one-hot targets only =============================================================


@expect(
    against="softmax_with_loss",
    why="-sum(t * log y) takes one-hot t only: right on one-hot targets, never stale",
    verdict="fail",
    passes_without=("labels",),
    not_words=("[stale]", "all zeros"),
)
@expect(
    against="softmax_with_loss",
    why="the same on one-hot targets only",
    verdict="pass",
    options={"without": ("labels",)},
)
class SoftmaxWithLossOneHotOnly:
    """Stable, honours dout, but only for one-hot t: ``-sum(t * log y)`` and ``y - t`` broadcast integer
    labels wrongly (or raise). Right on one-hot targets."""

    def __init__(self) -> None:
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        shifted = x - x.max(axis=1, keepdims=True)
        log_y = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        self.y = np.exp(log_y)
        return -np.sum(t * log_y) / x.shape[0]

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        return dout * (self.y - self.t) / self.y.shape[0]


# ==== networks: book 1, ch05-ch06, on the library's layers ===============================================


@expect(
    against="two_layer_net",
    why="the book's TwoLayerNet: loss -log(y + 1e-7), right gradients",
    verdict="fail",
    diagnoses=codes("epsilon"),
)
@expect(
    against="two_layer_net",
    why="the same with the epsilon allowed: gradients checked exactly through every stage",
    verdict="pass",
    notes=("epsilon",),
    options={"allow": ("epsilon",)},
)
class TwoLayerNetTextbookLoss(TwoLayerNet):
    """The book's TwoLayerNet: its last layer is the book's SoftmaxWithLoss, whose loss is
    ``-log(y + 1e-7)``; the network always calls its backward with dout = 1, so the gradients are right."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01):
        super().__init__(input_size, hidden_size, output_size, weight_init_std)
        self.last_layer = BookSoftmaxWithLoss()  # type: ignore[assignment]


@expect(
    against="multi_layer_net_extend",
    why="the book's loss with dropout masks and batch normalization: epsilon, passing when allowed",
    verdict="pass",
    notes=("epsilon",),
    options={"allow": ("epsilon",)},
)
class MultiLayerNetExtendTextbookLoss(MultiLayerNetExtend):
    """The book's MultiLayerNetExtend with the book's loss, ``-log(y + 1e-7)``: right gradients."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_layer = BookSoftmaxWithLoss()  # type: ignore[assignment]


class ReluWithoutMask(Relu):
    """backward passes dout through everywhere: the mask is computed in forward but never applied."""

    def backward(self, dout: Array) -> Array:
        return np.array(dout, copy=True)


@expect(
    against="multi_layer_net",
    why="relu backward without its mask: right with sigmoid activations only",
    verdict="fail",
    passes_without=("relu",),
    options={"max_failures": 1},  # the first failure's scope is the point
)
class MultiLayerNetReluWithoutMask(MultiLayerNet):
    """Its own Relu forgets the mask in backward; with sigmoid activations the network is right."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, layer in self.layers.items():
            if isinstance(layer, Relu):
                self.layers[key] = ReluWithoutMask()


@expect(
    against="multi_layer_net",
    why="lambda = 0 read as 0.1: right only with weight decay on",
    verdict="fail",
    passes_without=("no_weight_decay",),
    options={"max_failures": 1},  # the first failure's scope is the point
)
class MultiLayerNetDecayDefault(MultiLayerNet):
    """``self.weight_decay_lambda = weight_decay_lambda or 0.1``: a "default" that turns a lambda of 0 into
    0.1, so the network is right only where weight decay is on."""

    def __init__(self, *args: Any, weight_decay_lambda: float = 0, **kwargs: Any) -> None:
        super().__init__(*args, weight_decay_lambda=weight_decay_lambda, **kwargs)
        self.weight_decay_lambda = weight_decay_lambda or 0.1  # BUG


@expect(
    against="multi_layer_net_extend",
    why="no activation without batch normalization",
    verdict="fail",
    passes_without=("no_batchnorm",),
    options={"max_failures": 1},  # the first failure's scope is the point
)
class MultiLayerNetExtendActivationUnderBatchnorm(MultiLayerNetExtend):
    """The book's layer loop with the activation indented under ``if self.use_batchnorm:``: without batch
    normalization the hidden layers have no activation at all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_batchnorm:
            for key in [k for k in self.layers if k.startswith("Activation_function")]:
                del self.layers[key]


class LabelsOnlySoftmaxWithLoss:
    """A learner's SoftmaxWithLoss that picks ``log y[n, t[n]]``: integer labels only (one-hot targets are
    floats, which cannot index)."""

    def __init__(self) -> None:
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.y, self.t = softmax(x), t
        shifted = x - np.max(x, axis=1, keepdims=True)
        log_y = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        return -np.sum(log_y[np.arange(x.shape[0]), t]) / x.shape[0]

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        dx = self.y.copy()
        dx[np.arange(dx.shape[0]), self.t] -= 1
        return dx * dout / dx.shape[0]


@expect(
    against="two_layer_net",
    why="a loss that indexes y[n, t[n]]: right on integer labels only",
    verdict="fail",
    passes_without=("one_hot",),
    options={"max_failures": 1},  # the first failure's scope is the point
)
class TwoLayerNetLabelsOnly(TwoLayerNet):
    """TwoLayerNet whose last layer takes integer labels only."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01):
        super().__init__(input_size, hidden_size, output_size, weight_init_std)
        self.last_layer = LabelsOnlySoftmaxWithLoss()  # type: ignore[assignment]


# ==== book 2's word2vec models (ch03, ch04) ===============================================================


_MODEL_RUN: dict[str, Any] = {"max_examples": 20}
"""A model row compiles a larger reference per shape: fewer examples keep the suite quick (each of the
four shapes of its pool is still drawn)."""

# A word2vec model with book 2's -log(y + 1e-7) loss is failed for that loss alone, and passed, with a note,
# with it allowed (in float64, where it always shows); as the book builds it (float32, no dtype argument)
# it is passed with the loss allowed (in float32 it shows only for a tiny probability).
_EPSILON_FAILS: dict[str, Any] = {
    "why": "log(y + 1e-7) is the only flaw",
    "verdict": "fail",
    "diagnoses": codes("epsilon"),
    "options": {**_MODEL_RUN, "scope": False, "max_failures": 1},
}
_EPSILON_ALLOWED: dict[str, Any] = {
    "why": "the epsilon allowed; the note says so",
    "verdict": "pass",
    "notes": ("epsilon",),
    "options": {**_MODEL_RUN, "allow": ("epsilon",)},
}
_BOOK_MODEL_ALLOWED: dict[str, Any] = {
    "why": "the book's model (float32, no dtype argument), the epsilon allowed",
    "verdict": "pass",
    "dtype": "float32",
    "options": {**_MODEL_RUN, "allow": ("epsilon",)},
}


class _Book2SoftmaxWithLoss(nlp_layers.SoftmaxWithLoss):
    """Book 2's SoftmaxWithLoss: its loss is ``cross_entropy_error``'s, with 1e-7 inside the log."""

    def forward(self, x: Any, t: Any) -> Any:
        super().forward(x, t)  # y and the targets, for backward
        assert self.y is not None
        self.loss = cross_entropy_error(self.y, np.asarray(t))
        return self.loss


class _Book2SigmoidWithLoss(nlp_layers.SigmoidWithLoss):
    """Book 2's SigmoidWithLoss: ``cross_entropy_error(np.c_[1 - y, y], t)``, 1e-7 inside the log."""

    def forward(self, x: Any, t: Any) -> Any:
        super().forward(x, t)
        assert self.y is not None
        self.loss = cross_entropy_error(np.c_[1 - self.y, self.y], np.asarray(t))
        return self.loss


def _book_negative_sampling(ns_loss: Any) -> None:
    ns_loss.loss_layers = [_Book2SigmoidWithLoss() for _ in ns_loss.loss_layers]


@expect(against="simple_cbow", **_EPSILON_FAILS)
@expect(against="simple_cbow", **_EPSILON_ALLOWED)
class SimpleCBOWEps(nlp_cbow.SimpleCBOW):
    """SimpleCBOW with book 2's SoftmaxWithLoss: its loss has the book's -log(y + 1e-7); the gradients are
    right."""

    def __init__(self, vocab_size: int, hidden_size: int, dtype: Any = "f") -> None:
        super().__init__(vocab_size, hidden_size, dtype)
        self.loss_layer = _Book2SoftmaxWithLoss()


@expect(against="cbow", **_EPSILON_FAILS)
@expect(against="cbow", **_EPSILON_ALLOWED)
class CBOWEps(nlp_cbow.CBOW):
    """CBOW with book 2's SigmoidWithLoss: -log(y + 1e-7) in every sigmoid loss."""

    def __init__(
        self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any, dtype: Any = "f"
    ) -> None:
        super().__init__(vocab_size, hidden_size, window_size, corpus, dtype)
        _book_negative_sampling(self.ns_loss)


@expect(against="skip_gram", **_EPSILON_FAILS)
@expect(against="skip_gram", **_EPSILON_ALLOWED)
class SkipGramEps(nlp_cbow.SkipGram):
    """SkipGram with book 2's SigmoidWithLoss: -log(y + 1e-7) in every sigmoid loss."""

    def __init__(
        self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any, dtype: Any = "f"
    ) -> None:
        super().__init__(vocab_size, hidden_size, window_size, corpus, dtype)
        for ns_loss in self.loss_layers:
            _book_negative_sampling(ns_loss)


@expect(against="simple_cbow", **_BOOK_MODEL_ALLOWED)
class BookSimpleCBOW(SimpleCBOWEps):
    """Book 2's SimpleCBOW (ch03/simple_cbow.py): the book's loss, and a constructor without dtype (the
    weights are float32, ``.astype('f')``)."""

    def __init__(self, vocab_size: int, hidden_size: int) -> None:
        super().__init__(vocab_size, hidden_size)


@expect(against="cbow", **_BOOK_MODEL_ALLOWED)
class BookCBOW(CBOWEps):
    """Book 2's CBOW (ch04/cbow.py): the book's loss, no dtype (float32 weights)."""

    def __init__(self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any) -> None:
        super().__init__(vocab_size, hidden_size, window_size, corpus)


@expect(against="skip_gram", **_BOOK_MODEL_ALLOWED)
class BookSkipGram(SkipGramEps):
    """Book 2's SkipGram (ch04/skip_gram.py): the book's loss, no dtype (float32 weights)."""

    def __init__(self, vocab_size: int, hidden_size: int, window_size: int, corpus: Any) -> None:
        super().__init__(vocab_size, hidden_size, window_size, corpus)


@expect(
    against="sigmoid",
    why="dx promoted to float64 for float32 x: right values in a wider float pass with a note",
    verdict="pass",
    notes=("dx: returned as float64 for float32 input",),
    dtype="float32",
)
class SigmoidFloat64Grad:
    """Correct, but dx is promoted to float64 (``np.asarray(dout, dtype=float)``) for a float32 input, as
    the book's float64 buffers do: values right in a wider float pass, with a note."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        out = 1 / (1 + np.exp(-np.clip(x, -500, 500)))
        self.out = np.asarray(out, dtype=x.dtype)
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        out = self.out.astype(float)
        return np.asarray(np.asarray(dout, dtype=float) * out * (1 - out))


LEARNER: list[Expect] = LEARNER_RECORDS.of(sys.modules[__name__], broken)
