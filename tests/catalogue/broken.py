"""Deliberately broken layers, written to the book's API, each with one realistic mistake.

Each class is right except for the one mistake its docstring names, so the oracle's report must point at
exactly that gradient (or output, or argument). Each class's ``@caught`` decorator records the
registry row it is checked against, the check the report must name and the mismatch kinds it may use;
``BROKEN`` lists them in the classes' order, then book 2's (``nlp/``). The mistake's line, where it is one
line, ends in ``# BUG`` (:func:`tests.catalogue.bug_line`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from backprop import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, Relu, SimpleConvNet
from tests.catalogue import (
    BROKEN_RECORDS,
    Array,
    Case,
    caught,
    expect,
    log_softmax,
    one_hot,
    passes,
    stable_sigmoid,
    sum_to,
)

# ==== MulLayer ==========================================================================================


class _MulBase:
    """The correct MulLayer (broadcasting); subclasses override the method that holds their mistake."""

    def __init__(self) -> None:
        self.x: Array | None = None
        self.y: Array | None = None

    def forward(self, x: Array, y: Array) -> Array:
        self.x, self.y = x, y
        return np.asarray(x * y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        dx = sum_to(dout * self.y, self.x.shape)
        dy = sum_to(dout * self.x, self.y.shape)
        return dx, dy


@caught(
    against="mul",
    check="dx",
    kinds={"shape"},
    diagnosis="unbroadcast",
    why="dx not summed over broadcast axes",
)
class MulNoUnbroadcastDx(_MulBase):
    """dx = dout * y is never summed back to x's shape (dy is)."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        dx = np.asarray(dout * self.y)  # BUG
        dy = sum_to(dout * self.x, self.y.shape)
        return dx, dy


@caught(against="mul", check="dy", kinds={"value"}, diagnosis="sign", why="dy = -dout * x")
class MulDyWrongSign(_MulBase):
    """dy = -dout * x."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        dx = sum_to(dout * self.y, self.x.shape)
        dy = sum_to(-dout * self.x, self.y.shape)  # BUG
        return dx, dy


@caught(against="mul", check="dx", kinds={"value"}, diagnosis="other", why="dx = dout * x (copy-paste)")
class MulDxCopyPaste(_MulBase):
    """dx = dout * x: the dy line copied without swapping the operand."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        assert self.x is not None and self.y is not None
        dx = sum_to(dout * self.x, self.x.shape)  # BUG
        dy = sum_to(dout * self.x, self.y.shape)
        return dx, dy


@caught(against="mul", check="dx", kinds={"arity"}, diagnosis="other", why="returns dx only")
class MulReturnsOnlyDx(_MulBase):
    """backward returns dx alone instead of the pair (dx, dy)."""

    def backward(self, dout: Array) -> Array:  # type: ignore[override]
        assert self.x is not None and self.y is not None
        return sum_to(dout * self.y, self.x.shape)  # BUG


# ==== AddLayer ==========================================================================================


class _AddBase:
    """The correct AddLayer (broadcasting); subclasses override the method that holds their mistake."""

    def __init__(self) -> None:
        self.x_shape: tuple[int, ...] = ()
        self.y_shape: tuple[int, ...] = ()

    def forward(self, x: Array, y: Array) -> Array:
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return np.asarray(x + y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        return sum_to(dout, self.x_shape), sum_to(dout, self.y_shape)


@caught(against="add", check="dy", kinds={"aliased"}, diagnosis="in_place", why="dy is dout itself")
class AddReturnsDoutAsDy(_AddBase):
    """dy is the caller's dout itself whenever y was not broadcast (aliasing)."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        dx = sum_to(dout, self.x_shape)
        dy = dout if np.shape(dout) == self.y_shape else sum_to(dout, self.y_shape)  # BUG
        return dx, dy


@caught(against="add", check="dy", kinds={"shape"}, diagnosis="unbroadcast", why="dy = dout * 1, unsummed")
class AddNoUnbroadcastDy:
    """dy = dout * 1, the book's line, with no sum over y's broadcast axes."""

    def __init__(self) -> None:
        self.x_shape: tuple[int, ...] = ()

    def forward(self, x: Array, y: Array) -> Array:
        self.x_shape = np.shape(x)
        return np.asarray(x + y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        return sum_to(dout, self.x_shape), np.asarray(dout * 1)  # BUG


@caught(against="add", check="dx", kinds={"shape"}, diagnosis="unbroadcast", why="size-1 axes not summed")
class AddLeadingAxesOnlyDx(_AddBase):
    """dx sums away the axes broadcasting prepended, but not x's own size-1 axes."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        d = np.asarray(dout)
        dx = d.sum(axis=tuple(range(d.ndim - len(self.x_shape))))  # BUG
        return np.array(dx), sum_to(dout, self.y_shape)


@caught(against="add", check="dx", kinds={"shape"}, diagnosis="shape", why="sum without keepdims")
class AddDropsKeepdimsDx(_AddBase):
    """dx sums x's size-1 broadcast axes without keepdims=True, so they vanish from its shape."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        d = np.asarray(dout)
        g = d.sum(axis=tuple(range(d.ndim - len(self.x_shape))))
        axes = tuple(i for i, n in enumerate(self.x_shape) if n == 1 and g.shape[i] != 1)
        dx = g.sum(axis=axes) if axes else np.array(g)  # BUG
        return np.asarray(dx), sum_to(dout, self.y_shape)


# ==== Relu ==============================================================================================


class _ReluBase:
    """The correct Relu (relu'(0) = 0); subclasses override the method that holds their mistake."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return np.where(self.mask, 0.0, dout).astype(dout.dtype)


@caught(against="relu", check="dx", kinds={"aliased"}, diagnosis="in_place", why="returns the caller's dout")
class BookRelu:
    """The book's Relu: ``dout[self.mask] = 0; return dout`` - writes into and returns the caller's dout."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        dout[self.mask] = 0
        return dout


@caught(against="relu", check="dout", kinds={"mutated"}, diagnosis="in_place", why="dout[mask] = 0 in place")
class ReluZeroesDoutInPlace(_ReluBase):
    """Zeroes the caller's dout in place, then returns a copy (no aliasing, but dout is modified)."""

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        dout[self.mask] = 0  # BUG
        return dout.copy()


@caught(against="relu", check="x", kinds={"mutated"}, diagnosis="in_place", why="forward zeroes x")
class ReluForwardMutatesX:
    """forward forgets the book's ``x.copy()`` and zeroes the caller's x in place."""

    def __init__(self) -> None:
        self.mask: Array | None = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0
        out = x  # BUG
        out[self.mask] = 0
        return out

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return np.where(self.mask, 0.0, dout).astype(dout.dtype)


@caught(
    against="relu",
    check="dx",
    kinds={"value"},
    diagnosis="kink",
    why="relu'(0) = 1: a valid subgradient, so a failure only with --strict",
    options={"strict": True},
)
class ReluKinkAtZero(_ReluBase):
    """mask = x < 0, so relu'(0) = 1; the project declares relu'(0) = 0."""

    def forward(self, x: Array) -> Array:
        self.mask = x < 0  # BUG
        return np.where(self.mask, 0.0, x).astype(x.dtype)


@caught(against="relu", check="dx", kinds={"value"}, diagnosis="scale", why="dx scaled by 0.5")
class ReluHalfGradient(_ReluBase):
    """dx = 0.5 * dout where x > 0 (a stray factor)."""

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return np.where(self.mask, 0.0, 0.5 * dout).astype(dout.dtype)  # BUG


# A float32 gradient is a dtype error when its values survive the cast; when they do not, the
# rounding (~1e-8 relative) exceeds the float64 tolerance first and is reported as a value error.
@caught(against="relu", check="dx", kinds={"dtype", "value"}, diagnosis="dtype", why="dx downcast")
class ReluFloat32Grad(_ReluBase):
    """dx is returned as float32 whatever the input dtype."""

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return np.where(self.mask, 0.0, dout).astype(np.float32)  # BUG


# ==== Sigmoid ===========================================================================================


class _SigmoidBase:
    """The correct Sigmoid (overflow-free); subclasses override the method that holds their mistake."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = stable_sigmoid(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return np.asarray(dout * self.out * (1 - self.out))


@caught(against="sigmoid", check="dx", kinds={"value"}, diagnosis="ignores_dout", why="out * (1 - out)")
class SigmoidIgnoresDout(_SigmoidBase):
    """backward returns out * (1 - out), the local derivative, without multiplying by dout."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return np.asarray(self.out * (1 - self.out))  # BUG


@caught(against="sigmoid", check="dx", kinds={"value"}, diagnosis="sign", why="dx negated")
class SigmoidWrongSign(_SigmoidBase):
    """dx = -dout * out * (1 - out)."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return np.asarray(-dout * self.out * (1 - self.out))  # BUG


@caught(against="sigmoid", check="dx", kinds={"value"}, diagnosis="other", why="x * (1 - x)")
class SigmoidDerivativeOfX:
    """dx = dout * x * (1 - x): the derivative formula applied to the input instead of the output."""

    def __init__(self) -> None:
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x
        return stable_sigmoid(x)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        return np.asarray(dout * self.x * (1 - self.x))  # BUG


@caught(against="sigmoid", check="out", kinds={"value"}, diagnosis="other", why="forward is tanh")
class SigmoidTanhForward:
    """forward returns tanh(x); backward is the correct sigmoid derivative (a forward-only bug)."""

    def __init__(self) -> None:
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.tanh(x)  # BUG

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        s = stable_sigmoid(self.x)
        return np.asarray(dout * s * (1 - s))


@caught(against="sigmoid", check="out", kinds={"value"}, diagnosis="other", why="exp(+x) in forward")
class SigmoidFlippedForward(_SigmoidBase):
    """forward computes 1 / (1 + exp(x)); out * (1 - out) is symmetric, so backward is still right."""

    def forward(self, x: Array) -> Array:
        self.out = stable_sigmoid(-x)  # BUG
        return self.out


@caught(against="sigmoid", check="dx", kinds={"dtype", "value"}, diagnosis="dtype", why="dx downcast")
class SigmoidFloat32Grad(_SigmoidBase):
    """dx is downcast to float32 ("to save memory") for a float64 input."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return np.asarray(dout * self.out * (1 - self.out)).astype(np.float32)  # BUG


# out is compared as forward returned it, then checked again after backward: it was overwritten
@caught(
    against="sigmoid",
    check="out",
    kinds={"value", "mutated", "aliased"},
    diagnosis="in_place",
    why="backward writes dx into the array forward returned",
)
class SigmoidBackwardReusesOut(_SigmoidBase):
    """backward computes dx in the buffer forward returned: the caller's ``out`` changes after the fact,
    dx aliases it, and a second backward() gives a different (wrong) answer."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        self.out *= 1 - self.out
        self.out *= dout
        return self.out


# ==== Affine ============================================================================================


class _AffineBase:
    """The book's Affine with N-D input (chapter 7 form); subclasses override the method that holds their
    mistake (usually ``backward``)."""

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
        return np.asarray(self.x @ self.W + self.b)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(against="affine", check="dx", kinds={"shape"}, diagnosis="shape", why="dx stays (N, D)")
class AffineNoReshapeBack(_AffineBase):
    """dx stays (N, D); it is never reshaped back to x's N-D shape."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T)  # BUG


@caught(against="affine", check="db", kinds={"shape"}, diagnosis="unbroadcast", why="db = dout")
class AffineDbUnsummed(_AffineBase):
    """db = dout, not summed over the batch (a copy, so only its shape is wrong)."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = dout.copy()  # BUG
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(against="affine", check="db", kinds={"value"}, diagnosis="scale", why="db = mean(dout)")
class AffineDbMean(_AffineBase):
    """db = mean of dout over the batch instead of its sum."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = np.mean(dout, axis=0)  # BUG
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(
    against="affine", check="dW", kinds={"value"}, diagnosis="transpose", why="(dout.T @ x).reshape(W.shape)"
)
class AffineDwTransposedReshape(_AffineBase):
    """dW = (dout.T @ x).reshape(W.shape): the (M, D) product is reshaped instead of transposed."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = (dout.T @ self.x).reshape(self.W.shape)  # BUG
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(against="affine", check="dW", kinds={"shape", "value"}, diagnosis="transpose", why="dW = dout.T @ x")
class AffineDwTransposed(_AffineBase):
    """dW = dout.T @ x: the operands of the product are swapped, so dW comes out (M, D) instead of (D, M)."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = dout.T @ self.x  # BUG
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(against="affine", check="dx", kinds={"value"}, diagnosis="other", why="reshape(order='F')")
class AffineDxFortranReshape(_AffineBase):
    """dx is reshaped back to x's shape in Fortran order, scrambling the trailing axes."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape, order="F")  # BUG


@caught(against="affine", check="dW", kinds={"value"}, diagnosis="scale", why="dW = 2 * x.T @ dout")
class AffineDwDoubled(_AffineBase):
    """dW = 2 * x.T @ dout (a stray factor, as if differentiating a square)."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = 2 * self.x.T @ dout  # BUG
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


@caught(against="affine", check="dW", kinds={"shape"}, diagnosis="shape", why="x.T of N-D x")
class AffineDwFromUnflattenedX(_AffineBase):
    """dW = np.dot(x.T, dout) with the original N-D x, whose .T reverses every axis."""

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.asarray(x.reshape(x.shape[0], -1) @ self.W + self.b)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = np.dot(self.x.T, dout)  # BUG
        self.db = np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.x.shape)


@caught(against="affine", check="out", kinds={"value"}, diagnosis="other", why="forward omits + b")
class AffineForgetsBias(_AffineBase):
    """forward returns x @ W without + b; every gradient is right (a forward-only bug)."""

    def forward(self, x: Array) -> Array:
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.asarray(self.x @ self.W)  # BUG


@caught(against="affine", check="W", kinds={"mutated"}, diagnosis="in_place", why="W -= lr * dW in backward")
class AffineStepsW(_AffineBase):
    """backward also takes an SGD step, ``self.W -= 0.01 * self.dW``, modifying the caller's W."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        dx = np.asarray(dout @ self.W.T).reshape(self.original_x_shape)
        self.W -= 0.01 * self.dW  # BUG
        return dx


# ==== SoftmaxWithLoss ===================================================================================


class _SoftmaxLossBase:
    """Stable softmax-with-loss that accepts labels or one-hot t; subclasses override one method."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None

    def forward(self, x: Array, t: Array) -> Any:
        self.t = one_hot(t, x)
        logp = log_softmax(x)
        self.y = np.exp(logp)
        self.loss = -np.sum(self.t * logp) / x.shape[0]
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        return np.asarray(dout * (self.y - self.t) / self.t.shape[0])


@caught(against="softmax_with_loss", check="dx", kinds={"value"}, diagnosis="scale", why="no / batch_size")
class SoftmaxLossNoBatchDivide(_SoftmaxLossBase):
    """dx = dout * (y - t): the mean's 1 / batch_size is missing."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        return np.asarray(dout * (self.y - self.t))  # BUG


@caught(
    against="softmax_with_loss",
    check="dx",
    kinds={"value"},
    diagnosis="ignores_dout",
    why="the book's (y - t) / batch_size ignores dout",
)
class SoftmaxLossBookIgnoresDout(_SoftmaxLossBase):
    """The book's backward, ``dx = (y - t) / batch_size``: right only for dout = 1."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        return np.asarray((self.y - self.t) / batch_size)  # BUG


@caught(against="softmax_with_loss", check="dx", kinds={"value"}, diagnosis="sign", why="t - y")
class SoftmaxLossWrongSign(_SoftmaxLossBase):
    """dx = dout * (t - y) / batch_size."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        return np.asarray(dout * (self.t - self.y) / self.t.shape[0])  # BUG


# exp overflows to inf / inf = NaN; if only the row sum overflows, y rounds to 0 and dx is merely wrong
@caught(
    against="softmax_with_loss",
    check="dx",
    kinds={"nan", "value"},
    diagnosis="overflow",
    why="softmax without max shift",
)
class SoftmaxLossNaiveSoftmax(_SoftmaxLossBase):
    """y = exp(x) / sum(exp(x)) without the max shift: overflows to inf / inf = NaN at |x| ~ 1e3.

    The loss itself is computed stably, so only the gradient (which uses y) goes wrong.
    """

    def forward(self, x: Array, t: Array) -> Any:
        self.t = one_hot(t, x)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(x)  # BUG
            self.y = e / e.sum(axis=-1, keepdims=True)
        self.loss = -np.sum(self.t * log_softmax(x)) / x.shape[0]
        return self.loss


@caught(against="softmax_with_loss", check="loss", kinds={"value"}, diagnosis="epsilon", why="log(y + 1e-7)")
class SoftmaxLossBookDelta(_SoftmaxLossBase):
    """The book's cross_entropy_error, ``-sum(t * log(y + 1e-7)) / N``: biased by the 1e-7 (forward only)."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = one_hot(t, x)
        self.y = np.exp(log_softmax(x))
        self.loss = -np.sum(self.t * np.log(self.y + 1e-7)) / x.shape[0]  # BUG
        return self.loss


# ==== once gaps, now caught ============================================================================
#
# Each of these is wrong in real use (see its docstring) but right on a single fresh-instance forward and
# backward. The oracle now uses each layer a second time, interleaved with another instance, and checks
# gradients for aliasing with each other.

_SHARED_MASK: Array | None = None


@caught(
    against="relu",
    check="dx",
    kinds={"stateful"},
    diagnosis="stateful",
    why="state shared between instances: forward A, forward B, backward A reads B's mask",
)
class ReluModuleLevelMask:
    """The mask lives in a module global, so two Relu layers in one network overwrite each other's."""

    def forward(self, x: Array) -> Array:
        global _SHARED_MASK
        _SHARED_MASK = x <= 0
        return np.where(_SHARED_MASK, 0.0, x).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        assert _SHARED_MASK is not None
        return np.where(_SHARED_MASK, 0.0, dout).astype(dout.dtype)


@caught(
    against="add",
    check="dx",
    kinds={"aliased"},
    diagnosis="in_place",
    why="dx is dy: a caller that updates dx in place changes dy",
)
class AddSameArrayForBoth:
    """Returns one array as both dx and dy: a caller that updates dx in place silently changes dy."""

    def __init__(self) -> None:
        self.x_shape: tuple[int, ...] = ()
        self.y_shape: tuple[int, ...] = ()

    def forward(self, x: Array, y: Array) -> Array:
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return np.asarray(x + y)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        g = np.array(dout, copy=True)
        if self.x_shape == self.y_shape == g.shape:
            return g, g  # BUG
        return sum_to(g, self.x_shape), sum_to(g, self.y_shape)


@caught(
    against="affine",
    check="db",  # shrinking zeroes x, which hides dW; db accumulates all the same
    kinds={"stale", "stateful"},
    diagnosis="stale",
    why="dW += ..., db += ... never reset: wrong from the second backward on",
)
class AffineAccumulatesGrads(_AffineBase):
    """dW and db are accumulated (+=) across backward calls and never reset: right only on the first step."""

    def __init__(self, W: Array, b: Array) -> None:
        super().__init__(W, b)
        self.dW = np.zeros_like(W)
        self.db = np.zeros_like(b)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None and self.dW is not None and self.db is not None
        self.dW += self.x.T @ dout
        self.db += np.sum(dout, axis=0)
        return np.asarray(dout @ self.W.T).reshape(self.original_x_shape)


# ==== Convolution, Pooling, im2col/col2im (chapter 7) ===================================================


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1


def loop_im2col(x: Array, fh: int, fw: int, stride: int, pad: int) -> Array:
    """The book's layout, written as a loop over filter positions: rows (n, y, x), columns (c, i, j)."""
    n, c, h, w = x.shape
    oh, ow = _out_size(h, fh, stride, pad), _out_size(w, fw, stride, pad)
    img = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    col = np.zeros((n, c, fh, fw, oh, ow), dtype=x.dtype)
    for i in range(fh):
        for j in range(fw):
            col[:, :, i, j] = img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def loop_col2im(
    col: Array, shape: tuple[int, ...], fh: int, fw: int, stride: int, pad: int, add: bool = True
) -> Array:
    """im2col's adjoint as a loop; ``add=False`` assigns, the bug where overlapping windows overwrite."""
    n, c, h, w = shape
    oh, ow = _out_size(h, fh, stride, pad), _out_size(w, fw, stride, pad)
    grid = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for i in range(fh):
        for j in range(fw):
            target = img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            if add:
                target += grid[:, :, i, j]
            else:
                target[...] = grid[:, :, i, j]
    return img[:, :, pad : pad + h, pad : pad + w].copy()


@passes(against="convolution", why="the book's im2col, matrix product, col2im")
class BookConvolution:
    """The book's Convolution through im2col (correct); subclasses override the method that holds their
    mistake."""

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.x: Array | None = None
        self.col: Array | None = None
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        oh, ow = _out_size(h, fh, self.stride, self.pad), _out_size(w, fw, self.stride, self.pad)
        self.x, self.col = x, loop_im2col(x, fh, fw, self.stride, self.pad)
        out = self.col @ self.W.reshape(fn, -1).T + self.b
        return np.asarray(out.reshape(n, oh, ow, fn).transpose(0, 3, 1, 2))

    def _dout2d(self, dout: Array) -> Array:
        return np.asarray(dout.transpose(0, 2, 3, 1).reshape(-1, self.W.shape[0]))

    def _dx(self, d2: Array, add: bool = True) -> Array:
        assert self.x is not None
        fn, _, fh, fw = self.W.shape
        dcol = d2 @ self.W.reshape(fn, -1)
        return loop_col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad, add)

    def backward(self, dout: Array) -> Array:
        assert self.col is not None
        d2 = self._dout2d(dout)
        self.db = d2.sum(axis=0)
        self.dW = (self.col.T @ d2).T.reshape(self.W.shape)
        return self._dx(d2)


@caught(
    against="convolution",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="col2im assigns (=) where overlapping windows must add (+=)",
)
class ConvCol2imAssigns(BookConvolution):
    """col2im writes each window with = instead of +=: where windows overlap, the last one wins."""

    def backward(self, dout: Array) -> Array:
        assert self.col is not None
        d2 = self._dout2d(dout)
        self.db = d2.sum(axis=0)
        self.dW = (self.col.T @ d2).T.reshape(self.W.shape)
        return self._dx(d2, add=False)  # BUG


@caught(
    against="convolution",
    check="dW",
    kinds={"shape"},
    diagnosis="shape",
    why="dW left as the (C*FH*FW, FN) im2col matrix",
)
class ConvDwNotReshaped(BookConvolution):
    """dW is left as the (C*FH*FW, FN) matrix of the im2col product, never reshaped to (FN, C, FH, FW)."""

    def backward(self, dout: Array) -> Array:
        assert self.col is not None
        d2 = self._dout2d(dout)
        self.db = d2.sum(axis=0)
        self.dW = self.col.T @ d2  # BUG
        return self._dx(d2)


@caught(
    against="convolution",
    check="db",
    kinds={"value"},
    diagnosis="other",
    why="dout reshaped to (-1, FN) without moving channels last: db sums the wrong channels",
)
class ConvDbWrongAxes(BookConvolution):
    """dout reshaped to (-1, FN) without moving the channel axis last first: db (and dW) sum values from
    the wrong channels."""

    def backward(self, dout: Array) -> Array:
        assert self.col is not None
        d2 = dout.reshape(-1, self.W.shape[0])  # BUG
        self.db = d2.sum(axis=0)
        right = self._dout2d(dout)
        self.dW = (self.col.T @ right).T.reshape(self.W.shape)
        return self._dx(right)


@passes(against="pooling", why="im2col windows, argmax, -inf padding")
class Im2colPooling:
    """Max pooling through im2col with -inf padding (correct); subclasses hold one mistake each."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x: Array | None = None
        self.windows: Array | None = None

    def _padded_windows(self, x: Array, fill: float) -> Array:
        img = np.pad(x, ((0, 0), (0, 0), (self.pad, self.pad), (self.pad, self.pad)), constant_values=fill)
        col = loop_im2col(img, self.pool_h, self.pool_w, self.stride, 0)
        return np.asarray(col.reshape(-1, self.pool_h * self.pool_w))

    def forward(self, x: Array) -> Array:
        n, c, h, w = x.shape
        oh = _out_size(h, self.pool_h, self.stride, self.pad)
        ow = _out_size(w, self.pool_w, self.stride, self.pad)
        self.x, self.windows = x, self._padded_windows(x, -np.inf)
        return np.asarray(self.windows.max(axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2))

    def _scatter(self, dwin: Array) -> Array:
        assert self.x is not None
        n, c, h, w = self.x.shape
        shape = (n, c, h + 2 * self.pad, w + 2 * self.pad)
        img = loop_col2im(
            dwin.reshape(-1, c * self.pool_h * self.pool_w), shape, self.pool_h, self.pool_w, self.stride, 0
        )
        return img[:, :, self.pad : self.pad + h, self.pad : self.pad + w].copy()

    def backward(self, dout: Array) -> Array:
        assert self.windows is not None
        d = dout.transpose(0, 2, 3, 1).reshape(-1)
        dwin = np.zeros_like(self.windows)
        dwin[np.arange(d.size), np.argmax(self.windows, axis=1)] = d
        return self._scatter(dwin)


@caught(
    against="pooling",
    check="dx",
    kinds={"value"},
    diagnosis="kink",
    why="dout spread evenly over the window instead of routed to its maximum",
)
class PoolingSpreadsOverWindow(Im2colPooling):
    """backward hands every element of the window an equal share of dout, as average pooling would."""

    def backward(self, dout: Array) -> Array:
        assert self.windows is not None
        d = dout.transpose(0, 2, 3, 1).reshape(-1, 1)
        return self._scatter(np.repeat(d / self.windows.shape[1], self.windows.shape[1], axis=1))  # BUG


@caught(
    against="pooling",
    check="dx",
    kinds={"value"},
    diagnosis="kink",
    why="a tied maximum: every tied element receives the whole dout",
)
class PoolingEveryMaximum(Im2colPooling):
    """backward gives the whole dout to every element equal to the window's maximum: right until a tie."""

    def backward(self, dout: Array) -> Array:
        assert self.windows is not None
        d = dout.transpose(0, 2, 3, 1).reshape(-1, 1)
        mask = self.windows == self.windows.max(axis=1, keepdims=True)
        return self._scatter(mask * d)  # BUG


@caught(
    against="pooling",
    check="dx",
    kinds={"value"},
    diagnosis="kink",
    why="zero padding: a border window of zeros and negatives routes dout into the padding",
)
class PoolingZeroPadding(Im2colPooling):
    """Pads with 0 instead of -inf, as the book does: a border window of negative values returns 0."""

    def forward(self, x: Array) -> Array:
        n, c, h, w = x.shape
        oh = _out_size(h, self.pool_h, self.stride, self.pad)
        ow = _out_size(w, self.pool_w, self.stride, self.pad)
        self.x, self.windows = x, self._padded_windows(x, 0.0)  # BUG
        return np.asarray(self.windows.max(axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2))


@passes(against="im2col", why="loops over filter positions")
class LoopIm2col:
    """im2col and its VJP col2im, each a loop over the filter positions."""

    def __init__(self, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> None:
        self.geometry = (filter_h, filter_w, stride, pad)
        self.shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        return loop_im2col(x, *self.geometry)

    def backward(self, dout: Array) -> Array:
        return loop_col2im(dout, self.shape, *self.geometry)


@passes(against="col2im", why="loops over filter positions")
class LoopCol2im:
    """col2im and its VJP im2col, each a loop over the filter positions."""

    def __init__(
        self, input_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
    ):
        self.shape, self.geometry = input_shape, (filter_h, filter_w, stride, pad)

    def forward(self, col: Array) -> Array:
        return loop_col2im(col, self.shape, *self.geometry)

    def backward(self, dout: Array) -> Array:
        return loop_im2col(dout, *self.geometry)


@caught(
    against="im2col",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="col2im assigns where overlapping windows must add",
)
class Im2colAssigningVjp(LoopIm2col):
    """im2col as a layer whose backward is a col2im that assigns (=) instead of adding (+=)."""

    def backward(self, dout: Array) -> Array:
        return loop_col2im(dout, self.shape, *self.geometry, add=False)  # BUG


@caught(
    against="col2im",
    check="img",
    kinds={"value"},
    diagnosis="other",
    why="col2im assigns where overlapping windows must add",
)
class Col2imAssigns(LoopCol2im):
    """col2im that assigns (=) each window instead of adding (+=) it: overlapping windows overwrite."""

    def forward(self, col: Array) -> Array:
        return loop_col2im(col, self.shape, *self.geometry, add=False)  # BUG


# ==== chapter 6: Dropout, BatchNormalization, ChannelBatchNormalization ================================

_EPS = 10e-7


class _DropoutBase:
    """The correct first-book Dropout (non-inverted), with backward after a test-mode forward defined."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None
        self.train = True

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.train = train_flg
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return np.asarray(x * self.mask)
        return np.asarray(x * (1.0 - self.dropout_ratio))

    def backward(self, dout: Array) -> Array:
        if not self.train:
            return np.asarray(dout * (1.0 - self.dropout_ratio))
        return np.asarray(dout * self.mask)


@caught(
    against="dropout",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="dx = dout: the mask is not applied in backward",
)
class DropoutIgnoresMask(_DropoutBase):
    """backward passes dout straight through: the dropped elements get a gradient they never received."""

    def backward(self, dout: Array) -> Array:
        if not self.train:
            return np.asarray(dout * (1.0 - self.dropout_ratio))
        return np.array(dout, copy=True)  # BUG


@caught(
    against="dropout",
    check="state",
    kinds={"stale"},
    diagnosis="stale",
    why="the mask drawn once and reused by every later forward",
)
class DropoutMaskOnce(_DropoutBase):
    """The mask drawn on the first train-mode forward and kept for every later batch of its shape."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.train = train_flg
        if not train_flg:
            return np.asarray(x * (1.0 - self.dropout_ratio))
        if self.mask is None or self.mask.shape != x.shape:  # BUG
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
        return np.asarray(x * self.mask)


@caught(
    against="dropout",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="rand < ratio: the kept share is ratio, not 1 - ratio",
)
class DropoutKeepsRatio(_DropoutBase):
    """``rand < ratio``: keeps the fraction ratio of the elements instead of 1 - ratio."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.train = train_flg
        if not train_flg:
            return np.asarray(x * (1.0 - self.dropout_ratio))
        self.mask = np.random.rand(*x.shape) < self.dropout_ratio  # BUG
        return np.asarray(x * self.mask)


class _BatchNormBase:
    """The correct BatchNormalization (book 1, x (N, D) or (N, C, H, W) seen as (N, C*H*W)); subclasses
    override the step that holds their mistake."""

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
        self.shape: tuple[int, ...] = ()
        self.train = True
        self.xc: Array | None = None
        self.xn: Array | None = None
        self.std: Array | None = None
        self.dgamma: Array | None = None
        self.dbeta: Array | None = None

    def _stats(self, x: Array, train: bool) -> tuple[Array, Array]:
        assert self.running_mean is not None and self.running_var is not None
        if train:
            mu, var = x.mean(axis=0), x.var(axis=0)
            m = self.momentum  # the running statistics that test mode uses later, as the book keeps them
            self.running_mean = m * self.running_mean + (1 - m) * mu
            self.running_var = m * self.running_var + (1 - m) * var
            return mu, var
        return self.running_mean, self.running_var

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.shape, self.train = x.shape, train_flg
        x2 = x.reshape(x.shape[0], -1)
        mu, var = self._stats(x2, train_flg)
        self.xc = x2 - mu
        self.std = np.sqrt(var + _EPS)
        self.xn = self.xc / self.std
        return np.asarray(self.gamma * self.xn + self.beta).astype(x.dtype).reshape(x.shape)

    def backward(self, dout: Array) -> Array:
        assert self.xn is not None and self.std is not None
        d = dout.reshape(dout.shape[0], -1)
        self.dbeta = d.sum(axis=0)
        self._dgamma(d)
        dxn = self.gamma * d
        dx = self._train_dx(dxn) if self.train else dxn / self.std
        return np.asarray(dx).astype(dout.dtype).reshape(self.shape)

    def _dgamma(self, d: Array) -> None:
        assert self.xn is not None
        self.dgamma = np.sum(self.xn * d, axis=0)

    def _train_dx(self, dxn: Array) -> Array:
        assert self.xc is not None and self.std is not None
        n = dxn.shape[0]
        dxc = dxn / self.std
        dvar = -0.5 * np.sum(dxn * self.xc, axis=0) / self.std**3
        dxc = dxc + (2.0 / n) * self.xc * dvar
        return np.asarray(dxc - dxc.sum(axis=0) / n)


@caught(
    against="batch_normalization",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="dx misses - sum(dxc) / N, the gradient through the batch mean",
)
class BatchNormNoMeanTerm(_BatchNormBase):
    """dx forgets the path through the batch mean: dx = dxc, without - sum(dxc) / N."""

    def _train_dx(self, dxn: Array) -> Array:
        assert self.xc is not None and self.std is not None
        n = dxn.shape[0]
        dvar = -0.5 * np.sum(dxn * self.xc, axis=0) / self.std**3
        return np.asarray(dxn / self.std + (2.0 / n) * self.xc * dvar)  # BUG


@caught(
    against="batch_normalization",
    check="out",
    kinds={"value", "stale"},
    # the shrunk example is x = 0 with running mean 0, where train mode's output is right by chance:
    # then the running statistics this layer never updates are what a later test-mode call shows
    diagnosis="stale",
    why="train mode normalizes with the running statistics (and never updates them)",
)
class BatchNormRunningStatsInTraining(_BatchNormBase):
    """Train mode normalizes with the running statistics instead of the batch's own."""

    def _stats(self, x: Array, train: bool) -> tuple[Array, Array]:
        return super()._stats(x, False)  # BUG


@caught(
    against="batch_normalization",
    check="dgamma",
    kinds={"shape"},
    diagnosis="unbroadcast",
    why="dgamma = xn * dout, not summed over the batch",
)
class BatchNormDgammaNotSummed(_BatchNormBase):
    """dgamma = xn * dout per sample: the sum over the batch is missing."""

    def _dgamma(self, d: Array) -> None:
        assert self.xn is not None
        self.dgamma = np.asarray(self.xn * d)  # BUG


@caught(
    against="batch_normalization",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="the train-mode dx after a test-mode forward (the book's code)",
)
class BatchNormTrainBackwardInTestMode(_BatchNormBase):
    """backward always applies the train-mode formula, as the book's code does: after a test-mode forward
    the running statistics are constants, and their mean and variance terms do not belong in dx."""

    def backward(self, dout: Array) -> Array:
        train, self.train = self.train, True  # BUG
        try:
            return super().backward(dout)
        finally:
            self.train = train


# float32 only: the cancellation needs a feature whose mean is large next to its spread. Shrunk, the
# variance comes out negative and sqrt gives NaN, which the diagnosis still calls an exp overflow
@caught(
    against="batch_normalization",
    check="out",
    kinds={"value", "nan"},
    diagnosis="overflow",
    why="var = mean(x**2) - mean(x)**2 in float32",
    or_checks=frozenset({"dx", "dgamma"}),
    dtype="float32",
)
class BatchNormVarByMoments(_BatchNormBase):
    """var = mean(x**2) - mean(x)**2: in float32 it cancels catastrophically on a feature whose mean is large
    next to its spread (the variance is lost to rounding, even negative)."""

    def _stats(self, x: Array, train: bool) -> tuple[Array, Array]:
        mu, _ = super()._stats(x, train)  # the running statistics kept as the book does
        if not train:
            return mu, _
        return mu, (x * x).mean(axis=0) - mu * mu  # BUG


@caught(
    against="channel_batch_normalization",
    check="out",
    kinds={"value", "nan"},
    diagnosis="overflow",
    why="var = mean(x**2) - mean(x)**2 in float32, per channel",
    or_checks=frozenset({"dx", "dgamma"}),
    dtype="float32",
)
class ChannelBatchNormVarByMoments(BatchNormVarByMoments):
    """The per-channel layer as the flat one on (N*H*W, C) rows, with var = mean(x**2) - mean(x)**2."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        n, c, h, w = x.shape
        out = super().forward(x.transpose(0, 2, 3, 1).reshape(-1, c), train_flg)
        return np.asarray(out.reshape(n, h, w, c).transpose(0, 3, 1, 2))

    def backward(self, dout: Array) -> Array:
        n, c, h, w = dout.shape
        dx = super().backward(dout.transpose(0, 2, 3, 1).reshape(-1, c))
        return np.asarray(dx.reshape(n, h, w, c).transpose(0, 3, 1, 2))


@caught(
    against="channel_batch_normalization",
    check="out",
    kinds={"value"},
    diagnosis="other",
    why="statistics over N per (c, h, w) position instead of over N, H, W per channel",
    # a channel constant over N (x of zeros): out is right there, dx is not
    or_checks=frozenset({"dx"}),
)
class ChannelBatchNormPerPosition(_BatchNormBase):
    """The per-channel layer written as the book's: statistics over N only, for every (c, h, w) position
    separately, with gamma (C,) broadcast over the channel."""

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.shape, self.train = x.shape, train_flg
        rm, rv = self.running_mean, self.running_var
        assert rm is not None and rv is not None
        per_position = (x.mean(axis=0), x.var(axis=0))  # BUG
        mu, var = per_position if train_flg else (rm[:, None, None], rv[:, None, None])
        if train_flg:  # the running statistics per channel, right: the mistake is in the normalization
            m = self.momentum
            self.running_mean = m * rm + (1 - m) * x.mean(axis=(0, 2, 3))
            self.running_var = m * rv + (1 - m) * x.var(axis=(0, 2, 3))
        self.xc = x - mu
        self.std = np.broadcast_to(np.sqrt(var + _EPS), x.shape[1:])
        self.xn = self.xc / self.std
        g, b = self.gamma[:, None, None], self.beta[:, None, None]
        return np.asarray(g * self.xn + b).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        assert self.xn is not None and self.std is not None and self.xc is not None
        self.dbeta = dout.sum(axis=(0, 2, 3))
        self.dgamma = np.sum(self.xn * dout, axis=(0, 2, 3))
        dxn = self.gamma[:, None, None] * dout
        if not self.train:
            return np.asarray(dxn / self.std).astype(dout.dtype)
        return np.asarray(self._train_dx(dxn)).astype(dout.dtype)


# ==== networks (chapters 5-8) ===========================================================================


@passes(against="two_layer_net", why="no layer objects; log-sum-exp loss", float32=False)
class TwoLayerNetByHand:
    """(Correct.) TwoLayerNet without layer objects: the forward pass and its gradient written out in one method each,
    with the loss as log-sum-exp minus the label's score; labels or one-hot targets."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01):
        sizes = (input_size, hidden_size, output_size)
        self.params = {}
        for i in (1, 2):
            self.params[f"W{i}"] = weight_init_std * np.random.randn(sizes[i - 1], sizes[i])
            self.params[f"b{i}"] = np.zeros(sizes[i])

    def _scores(self, x: Array) -> tuple[Array, Array]:
        h = np.maximum(x @ self.params["W1"] + self.params["b1"], 0.0)
        return h, h @ self.params["W2"] + self.params["b2"]

    def loss(self, x: Array, t: Array) -> float:
        _, s = self._scores(x)
        top = s.max(axis=1, keepdims=True)
        lse = np.log(np.exp(s - top).sum(axis=1)) + top[:, 0]
        return float(np.mean(lse - np.sum(one_hot(t, s) * s, axis=1)))

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        h, s = self._scores(x)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p -= one_hot(t, s)
        ds = p / len(t)
        dh = np.where(h > 0, ds @ self.params["W2"].T, 0.0)
        return {"W1": x.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}


@caught(
    against="two_layer_net",
    check="grads['b1']",
    kinds={"missing"},
    diagnosis="other",
    why="gradient() returns no grads['b1']",
)
class TwoLayerNetForgetsDb(TwoLayerNetByHand):
    """gradient() fills in every entry but b1, forgotten when the dict was typed out."""

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        grads = super().gradient(x, t)
        del grads["b1"]  # BUG
        return grads


@caught(
    against="multi_layer_net",
    check="grads['W3']",  # shrinking zeroes W1 and W2, where lambda * W vanishes
    kinds={"value"},
    diagnosis="other",
    why="weight decay in the loss but not in the gradient",
)
class MultiLayerNetDecayForgotten(MultiLayerNet):
    """loss adds the weight decay 0.5 * lambda * sum W**2, but gradient() leaves out its lambda * W."""

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        lam, self.weight_decay_lambda = self.weight_decay_lambda, 0.0  # BUG
        try:
            return super().gradient(x, t)
        finally:
            self.weight_decay_lambda = lam


@caught(
    against="multi_layer_net_extend",
    check="grads['gamma1']",
    kinds={"value"},
    diagnosis="other",
    why="dgamma and dbeta filed under each other's keys",
)
@expect(
    against="multi_layer_net_extend",
    why="dgamma and dbeta swapped: right without batch normalization",
    verdict="fail",
    passes_without=("batchnorm",),
    options={"max_failures": 1},  # the first failure's scope is the point
)
class MultiLayerNetExtendSwapsGammaBeta(MultiLayerNetExtend):
    """gradient() files each batch normalization's dbeta under gamma and its dgamma under beta."""

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        grads = super().gradient(x, t)
        for i in range(1, self.hidden_layer_num + 1 if self.use_batchnorm else 1):
            grads[f"gamma{i}"], grads[f"beta{i}"] = grads[f"beta{i}"], grads[f"gamma{i}"]  # BUG
        return grads


@caught(
    against="simple_conv_net",
    check="grads['W2']",
    kinds={"value"},
    diagnosis="other",
    why="backward skips the Relu layers",
    # both relus are skipped: whichever parameter below them the shrunk example shows first
    or_checks=frozenset({"grads['b2']", "grads['W1']", "grads['b1']"}),
)
class SimpleConvNetSkipsReluBackward(SimpleConvNet):
    """The backward loop leaves out the Relu layers, as if an activation had no derivative to apply."""

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        self.loss(x, t)
        dout: Any = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            if not isinstance(layer, Relu):  # BUG
                dout = layer.backward(dout)
        return {key: getattr(self.layers[name], attr) for key, (name, attr) in self._grad_of.items()}


@caught(
    against="deep_conv_net",
    check="grads['W8']",
    kinds={"value"},
    diagnosis="other",
    why="gradient() with dropout off",
)
class DeepConvNetNoDropoutInGradient(DeepConvNet):
    """gradient()'s forward pass runs with dropout off (test mode), unlike the loss it differentiates."""

    def _train_loss(self, x: Array, t: Array) -> float:
        return self.loss(x, t, train_flg=False)  # BUG


# ==== "Deep Learning from Scratch 2": tests/catalogue/nlp/ ===============================================

from tests.catalogue import nlp  # noqa: E402  (the catalogue's second half)

BROKEN: list[Case] = BROKEN_RECORDS.of(sys.modules[__name__]) + nlp.BROKEN
