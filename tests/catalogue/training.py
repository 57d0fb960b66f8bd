"""Layers that are right on one fresh call but wrong in training, each with the verdict the oracle must give.

A single forward/backward on a new instance cannot see these mistakes: they show on a later batch (state
kept from the first call), for the ``dout`` a loss usually gets (1, or none at all), under another global
random state, after the optimiser updates a parameter in place, or only for some sizes and ranks. Some
classes end the process (``sys.exit``, ``exit()``), which the oracle must contain and report. The correct
layers at the end look stateful or random but are right on every call: the oracle must pass them.

Each class carries its :class:`tests.catalogue.Expect` as an ``@expect_in_training`` decorator;
``TRAINING`` lists them in the classes' order.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from tests.catalogue import TRAINING_RECORDS, Array, Expect, codes, expect_in_training
from tests.catalogue.broken import _BatchNormBase
from tests.catalogue.learner import SoftmaxWithLossEps, TwoLayerNetTextbookLoss

# ---- shared plain-NumPy pieces, written out once so each class below differs only in its mistake ---------


def _flatten(x: Array) -> Array:
    return x.reshape(x.shape[0], -1)


def _log_softmax(x: Array) -> Array:
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _one_hot(t: Array, x: Array) -> Array:
    """Integer labels (N,) as one-hot (N, C) in x's dtype; one-hot targets are copied as they are."""
    if t.shape == x.shape:
        return np.array(t, dtype=x.dtype)
    return np.eye(x.shape[1], dtype=x.dtype)[t]


class _Affine:
    """The book's Affine (N-D x flattened), right on every call; subclasses override one method."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x: Array | None = None
        self.original_x_shape: tuple[int, ...] = ()
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        self.original_x_shape = x.shape
        self.x = _flatten(x)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class _SoftmaxWithLoss:
    """A stable SoftmaxWithLoss that honours dout, right on every call; subclasses override one method."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.t = _one_hot(t, x)
        log_y = _log_softmax(x)
        self.y = np.exp(log_y)
        self.loss = -np.sum(self.t * log_y) / x.shape[0]
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        return dout * (self.y - self.t) / batch_size


# ==== state kept from the first call ====================================================================


@expect_in_training(
    against="relu", why="mask computed on the first forward only", verdict="fail", diagnoses=codes("stale")
)
class ReluStaleMask:
    """Computes the mask only on the first forward ("it is the same layer"); later backwards use it."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        if self.mask is None:
            self.mask = x <= 0
        return np.maximum(x, 0)

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


@expect_in_training(
    against="affine", why="dW from the first batch's x", verdict="fail", diagnoses=codes("stale")
)
class AffineStaleX(_Affine):
    """Keeps the first batch's x for dW; forward's output and dx use the current batch."""

    def forward(self, x: Array) -> Array:
        self.original_x_shape = x.shape
        x = _flatten(x)
        if self.x is None:
            self.x = x
        return np.dot(x, self.W) + self.b


@expect_in_training(
    against="affine", why="dW computed on the first backward only", verdict="fail", diagnoses=codes("stale")
)
class AffineLazyDW(_Affine):
    """Computes dW only on the first backward ("it is cached"); db and dx are recomputed every time."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dx = np.dot(dout, self.W.T)
        if self.dW is None:
            self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


# ==== the dout a loss usually gets ======================================================================


@expect_in_training(
    against="softmax_with_loss",
    why="if dout == 1: return y - t (no / batch_size)",
    verdict="fail",
    diagnoses=codes("dout_one"),
)
class SoftmaxLossDoutOneFastPath(_SoftmaxWithLoss):
    """A fast path for the usual ``dout == 1`` that forgets the division by the batch size."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        if dout == 1:  # skip the multiplication
            return self.y - self.t
        batch_size = self.t.shape[0]
        return dout * (self.y - self.t) / batch_size


@expect_in_training(
    against="softmax_with_loss",
    why="backward(dout=None): the None branch forgets / batch_size",
    verdict="fail",
    diagnoses=codes("default_dout"),
)
class SoftmaxLossNoneDefault(_SoftmaxWithLoss):
    """``backward(self, dout=None)``: the None branch ("last layer, nothing comes back") forgets the
    division by the batch size; any explicit dout, 1 included, is right."""

    def backward(self, dout: float | None = None) -> Array:
        assert self.y is not None and self.t is not None
        if dout is None:
            return self.y - self.t
        batch_size = self.t.shape[0]
        return dout * (self.y - self.t) / batch_size


# ==== global random state ===============================================================================


@expect_in_training(
    against="sigmoid",
    why="drops (1 - out) when np.random.rand() < 0.3",
    verdict="fail",
    diagnoses=codes("nondeterministic"),
)
class SigmoidRandomSlip:
    """Drops the ``(1 - out)`` factor on about 30% of backward calls (``np.random.rand() < 0.3``)."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        e = np.exp(-np.abs(x))
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        if np.random.rand() < 0.3:
            return dout * self.out
        return dout * (1.0 - self.out) * self.out


# ==== parameters held by reference ======================================================================


@expect_in_training(
    against="affine", why="self.W = W.copy(), b by reference", verdict="fail", diagnoses=codes("param_copy")
)
class AffineCopiesW(_Affine):
    """``self.W = W.copy()`` in __init__: the optimiser's in-place update of W never reaches the layer
    (b is held by reference, so after an update the output matches neither the old nor the new
    parameters as a whole)."""

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W.copy(), b)


@expect_in_training(
    against="affine",
    why="self.W = W.copy(); self.b = b.copy()",
    verdict="fail",
    failures=2,
    diagnoses=codes("param_copy"),
)
class AffineCopiesParams(_Affine):
    """``self.W = W.copy(); self.b = b.copy()`` in __init__ ("so the caller cannot change them"): the
    layer keeps computing with the initial parameters whatever the optimiser does."""

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W.copy(), b.copy())


@expect_in_training(
    against="affine",
    why="self.grads[0] = dW rebinds the entry",
    verdict="fail",
    diagnoses=codes("grads_rebound"),
)
class Book2AffineRebindsGrads:
    """Book 2's Affine (flattening N-D x) with ``self.grads[0] = dW``: the list entry is replaced, so the
    array an optimiser holds from ``grads`` never changes (``grads[1][...] = db`` is right)."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None
        self.x_shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        W, b = self.params
        self.x_shape = x.shape
        self.x = _flatten(x)
        return np.dot(self.x, W) + b

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        dx = np.dot(dout, W.T)
        dW = np.dot(self.x.T, dout)
        db = np.sum(dout, axis=0)

        self.grads[0] = dW
        self.grads[1][...] = db
        return dx.reshape(self.x_shape)


# ==== wrong only for some sizes, ranks or values ========================================================


@expect_in_training(
    against="affine",
    why="dW from the last chunk of 8 samples only",
    verdict="fail",
    any_of=codes("scale", "other"),
    passes_without=("large",),
)
class AffineChunkedDW(_Affine):
    """Builds dW in chunks of 8 samples "to save memory", but assigns instead of accumulating: only the
    last chunk counts, so dW is right for batches of up to 8 and wrong past that."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        dx = np.dot(dout, self.W.T)
        for i in range(0, self.x.shape[0], 8):
            self.dW = np.dot(self.x[i : i + 8].T, dout[i : i + 8])  # should be +=
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


@expect_in_training(
    against="relu", why="4-D dout transposed to NHWC in backward", verdict="fail", passes_without=("rank4",)
)
class ReluConvLayout:
    """Flattens 4-D feature maps per sample, and in backward copies Convolution.backward's
    ``dout.transpose(0, 2, 3, 1)``: for 4-D input dx comes out in NHWC order; right for every other rank
    (and for C == 1 or H * W == 1, where the transpose moves nothing)."""

    def __init__(self) -> None:
        self.mask: Array | None = None
        self.shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        if x.ndim == 4:  # a conv feature map
            x = x.reshape(x.shape[0], -1)
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out.reshape(self.shape)

    def backward(self, dout: Array) -> Array:
        if dout.ndim == 4:
            dout = dout.transpose(0, 2, 3, 1).reshape(dout.shape[0], -1)
        dx = dout.copy()
        dx[self.mask] = 0
        return dx.reshape(self.shape)


@expect_in_training(
    against="softmax_with_loss",
    why="row 0's loss weighted 1.01, always",
    verdict="fail",
    any_of=codes("scale", "other"),
)
class SoftmaxLossRow0Off(_SoftmaxWithLoss):
    """Row 0's contribution to the loss is weighted 1.01 (a debugging weight left in); dx is right. The
    error is 1% of one row's loss, which an extreme logit in another row must not hide."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = _one_hot(t, x)
        log_y = _log_softmax(x)
        self.y = np.exp(log_y)
        weights = np.ones(x.shape[0], dtype=x.dtype)
        weights[0] = 1.01
        self.loss = -np.sum(weights * np.sum(self.t * log_y, axis=1)) / x.shape[0]
        return self.loss


@expect_in_training(
    against="softmax_with_loss",
    why="row 0's loss weighted 1.01 when another row has |x| >= 1e3",
    verdict="fail",
    any_of=codes("scale", "other"),
    passes_without=("extreme",),
)
class SoftmaxLossRow0OffBesideExtreme(_SoftmaxWithLoss):
    """Row 0's loss is 1% off only when another row holds a logit of magnitude 1e3 or more, exactly when
    a tolerance widened by that row would hide it; otherwise right (loss and dx)."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = _one_hot(t, x)
        log_y = _log_softmax(x)
        self.y = np.exp(log_y)
        weights = np.ones(x.shape[0], dtype=x.dtype)
        if x.shape[0] > 1 and np.max(np.abs(x[1:])) >= 1e3:
            weights[0] = 1.01
        self.loss = -np.sum(weights * np.sum(self.t * log_y, axis=1)) / x.shape[0]
        return self.loss


# ==== ending the process ================================================================================


@expect_in_training(against="relu", why="sys.exit(0) in forward", verdict="fail", diagnoses=codes("exit"))
class ReluSysExit:
    """``sys.exit(0)`` in forward, left over from debugging ("stop here and look at the shapes")."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        sys.exit(0)

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


@expect_in_training(against="sigmoid", why="exit() in backward", verdict="fail", diagnoses=codes("exit"))
class SigmoidExitInBackward:
    """``exit()`` (the site builtin) in backward, after a correct forward."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        e = np.exp(-np.abs(x))
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, dout: Array) -> Array:
        exit()


@expect_in_training(
    against="relu",
    why="an endless loop in backward for inputs of more than three elements",
    verdict="fail",
    diagnoses=codes("timeout"),
    options={"timeout": 0.5, "max_failures": 1, "scope": False},
)
class ReluHangsOnBigBatch:
    """backward loops forever once the input has more than three elements (a ``while`` whose condition
    never changes): the oracle's per-call time limit must end it."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        i = 0
        while dout.size > 3 and i >= 0:
            i += 1
        return np.where(self.mask, 0.0, dout).astype(dout.dtype)


# ==== correct: stateful-looking or random-looking, right on every call ===================================


@expect_in_training(against="relu", why="keeps all masks, uses the latest", verdict="pass")
class ReluWithHistory:
    """Keeps every mask it has computed and a call counter, but backward always uses the latest mask."""

    def __init__(self) -> None:
        self.masks: list[Array] = []
        self.calls = 0

    def forward(self, x: Array) -> Array:
        self.calls += 1
        self.masks.append(x <= 0)
        out = x.copy()
        out[self.masks[-1]] = 0
        return out

    def backward(self, dout: Array) -> Array:
        dx = dout.copy()
        dx[self.masks[-1]] = 0
        return dx


@expect_in_training(against="affine", why="counters that affect nothing", verdict="pass")
class AffineBookkeeping(_Affine):
    """Counts samples and calls and remembers the last batch size; everything is recomputed each call,
    and W and b are read from the attributes the caller's arrays are bound to."""

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W, b)
        self.seen = 0
        self.steps = 0
        self.last_batch: int | None = None

    def forward(self, x: Array) -> Array:
        self.seen += x.shape[0]
        self.last_batch = x.shape[0]
        return super().forward(x)

    def backward(self, dout: Array) -> Array:
        self.steps += 1
        return super().backward(dout)


@expect_in_training(against="relu", why="np.random drawn, never used", verdict="pass")
class ReluDropoutOff:
    """A Relu with built-in dropout at ratio 0: it draws ``np.random.rand`` on every forward, but the
    mask it keeps is always all True, so no result depends on the random state."""

    def __init__(self) -> None:
        self.dropout_ratio = 0.0
        self.keep: Array | None = None
        self.positive: Array | None = None

    def forward(self, x: Array) -> Array:
        self.keep = np.random.rand(*x.shape) >= self.dropout_ratio
        self.positive = x > 0
        return np.where(self.positive & self.keep, x, 0).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        assert self.positive is not None and self.keep is not None
        return np.where(self.positive & self.keep, dout, 0).astype(dout.dtype)


@expect_in_training(against="softmax_with_loss", why="a right fast path for dout == 1", verdict="pass")
class SoftmaxLossDoutOneFastPathRight(_SoftmaxWithLoss):
    """A fast path for ``dout == 1`` done right: the same numbers without the multiplication."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        if dout == 1:
            return (self.y - self.t) / batch_size
        return dout * (self.y - self.t) / batch_size


@expect_in_training(against="softmax_with_loss", why="dout=None read as 1", verdict="pass")
class SoftmaxLossNoneMeansOne(_SoftmaxWithLoss):
    """``backward(self, dout=None)`` with None read as 1, as it should be."""

    def backward(self, dout: float | None = None) -> Array:
        assert self.y is not None and self.t is not None
        if dout is None:
            dout = 1.0
        batch_size = self.t.shape[0]
        return dout * (self.y - self.t) / batch_size


# ---- train mode, then test mode on one instance (chapter 6) -------------------------------------------------


@expect_in_training(
    against="dropout",
    why="book 1's Dropout: no backward after a test-mode forward",
    verdict="pass",
    notes=("test-mode backward is outside this layer's contract",),
)
class BookDropout:
    """Book 1's Dropout as printed: backward after a test-mode forward is left undefined (mask is None)."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Array) -> Array:
        return dout * self.mask  # type: ignore[operator]


@expect_in_training(
    against="dropout",
    why="test mode reuses the last training mask",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"max_failures": 1, "scope": False},
)
class DropoutMaskInTestMode(BookDropout):
    """Test mode reuses the last training mask (right on a fresh instance, which has none yet)."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        if train_flg or self.mask is None:
            return super().forward(x, train_flg)
        return x * self.mask * (1.0 - self.dropout_ratio)


@expect_in_training(
    against="batch_normalization",
    why="book 1's BatchNormalization: no backward after a test-mode forward",
    verdict="pass",
    notes=("test-mode backward is outside this layer's contract",),
)
class BookBatchNorm(_BatchNormBase):
    """Book 1's BatchNormalization: right in train mode and in a test-mode forward, and, as the book's,
    no backward after a test-mode forward (it reads what only train mode computes)."""

    def backward(self, dout: Array) -> Array:
        if not self.train:
            raise AttributeError("'BookBatchNorm' object has no attribute 'batch_size'")
        return super().backward(dout)


@expect_in_training(
    against="batch_normalization",
    why="running = (1 - m) * running + m * batch",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"max_failures": 1, "scope": False},
)
class BatchNormMomentumSwapped(_BatchNormBase):
    """running = (1 - momentum) * running + momentum * batch: the weights of the moving average swapped."""

    def _stats(self, x: Array, train: bool) -> tuple[Array, Array]:
        if not train:
            return super()._stats(x, train)
        mu, var, m = x.mean(axis=0), x.var(axis=0), self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var
        return mu, var


@expect_in_training(
    against="batch_normalization",
    why="the running variance is never updated",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"max_failures": 1, "scope": False},
)
class BatchNormRunningVarNeverUpdated(_BatchNormBase):
    """Only the running mean is updated; the running variance keeps its initial value."""

    def _stats(self, x: Array, train: bool) -> tuple[Array, Array]:
        if not train:
            return super()._stats(x, train)
        mu, var = x.mean(axis=0), x.var(axis=0)
        self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
        return mu, var


# ---- caches the earlier stages could not see: by shape, by object, shared between instances -----------------


@expect_in_training(
    against="softmax_with_loss",
    why="one-hot targets built once per shape",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"max_failures": 1, "scope": False},
)
class SoftmaxLossLabelsByShape(_SoftmaxWithLoss):
    """The one-hot targets are built once per shape of x ("the labels do not change"): a later batch of the
    same size trains on the earlier batch's labels."""

    def forward(self, x: Array, t: Array) -> Any:
        if self.t is None or self.t.shape != x.shape:
            self.t = _one_hot(t, x)
        log_y = _log_softmax(x)
        self.y = np.exp(log_y)
        self.loss = -np.sum(self.t * log_y) / x.shape[0]
        return self.loss


@expect_in_training(
    against="affine",
    why="returns the last output when given the same array object (a refilled batch buffer)",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"max_failures": 1, "scope": False},
)
class AffineSkipsTheSameBatch(_Affine):
    """Skips the product when given the very array it saw last: a training loop that refills one batch
    buffer in place gets the previous batch's output."""

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W, b)
        self.seen: Array | None = None
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        if x is self.seen and self.out is not None:
            return self.out
        self.seen, self.out = x, super().forward(x)
        return self.out


@expect_in_training(
    against="batch_normalization",
    why="std kept on the class, shared by every instance",
    verdict="fail",
    diagnoses=codes("stateful"),
    options={"max_failures": 1, "scope": False},
)
class BatchNormClassStd(_BatchNormBase):
    """Keeps std on the class, shared by every instance: another instance's forward replaces it before this
    one's backward (-x has the same std, so B must see other values for it to show)."""

    shared_std: Array = np.zeros(0)

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        out = super().forward(x, train_flg)
        BatchNormClassStd.shared_std = self.std
        return out

    def backward(self, dout: Array) -> Array:
        self.std = BatchNormClassStd.shared_std
        return super().backward(dout)


@expect_in_training(
    against="matmul",
    why="backward sets self.dW, never grads[0]",
    verdict="fail",
    any_of=codes("other", "scale"),
    options={"max_failures": 1, "scope": False},
)
class MatMulSetsDW:
    """Book 2's MatMul, but backward sets self.dW and never writes grads[0], which optimizers read."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x: Array | None = None
        self.dW: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.dot(x, self.params[0])

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = np.dot(self.x.T, dout)
        return np.dot(dout, self.params[0].T)


@expect_in_training(against="matmul", why="grads[0] written, self.dW kept too", verdict="pass")
class MatMulSetsBoth(MatMulSetsDW):
    """Right: writes grads[0] as the book does, and keeps self.dW too."""

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)
        self.grads[0][...] = self.dW
        return dx


@expect_in_training(
    against="softmax_with_loss",
    why="the epsilon allowed; dx of the first call returned forever",
    verdict="fail",
    diagnoses=codes("stale"),
    options={"allow": ("epsilon",), "max_failures": 1, "scope": False},
)
class SoftmaxWithLossEpsFirstDx(SoftmaxWithLossEps):
    """The book's loss (``-log(y + 1e-7)``, allowed by ``--allow epsilon``) with a backward that keeps the
    first dx it computed and returns it on every later call."""

    def backward(self, dout: float = 1) -> Array:
        if not hasattr(self, "first_dx"):
            self.first_dx = super().backward(dout)
        return np.array(self.first_dx, copy=True)


@expect_in_training(
    against="two_layer_net",
    why="the epsilon allowed; gradient() of the first call returned forever",
    verdict="fail",
    # the training stage's x and t stay as they were (only parameters move), so the first call's dict
    # is right for the parameters as built: read as a copy of them
    any_of=codes("stale", "param_copy"),
    options={"allow": ("epsilon",), "max_failures": 1, "scope": False},
)
class TwoLayerNetTextbookFirstGradient(TwoLayerNetTextbookLoss):
    """The book's TwoLayerNet (``-log(y + 1e-7)``) whose gradient() keeps the first dict it computed."""

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        if not hasattr(self, "first_grads"):
            self.first_grads = super().gradient(x, t)
        return {k: v.copy() for k, v in self.first_grads.items()}


TRAINING: list[Expect] = TRAINING_RECORDS.of(sys.modules[__name__])
