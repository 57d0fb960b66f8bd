"""Catalogue for book 2's ``common/layers.py`` rows: matmul, softmax, sigmoid_with_loss and embedding.

Every class follows the book's API (``params``/``grads`` lists, gradients written in place). The broken
ones are right but for the one mistake their docstring names; the correct ones are written the book's way
(``np.dot``, ``np.add.at``, ``grads[0][...] = dW``) or another right way (einsum, per-sample loops, one-hot
products), without the library's helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.catalogue import Array, caught, passes, stable_sigmoid

# ==== MatMul ==============================================================================================


@passes(against="matmul", why="the book's np.dot, grads[0][...] = dW")
class BookMatMul:
    """The book's MatMul: np.dot, dW written into grads[0] with [...]."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        (W,) = self.params
        self.x = x
        return np.dot(x, W)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0][...] = np.dot(self.x.T, dout)
        return np.dot(dout, W.T)


@passes(against="matmul", why="einsum, np.copyto into grads[0]")
class MatMulEinsum:
    """einsum for all three products; dW copied into grads[0] with np.copyto."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.einsum("nd,dh->nh", x, self.params[0])

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        np.copyto(self.grads[0], np.einsum("nd,nh->dh", self.x, dout))
        return np.einsum("nh,dh->nd", dout, self.params[0])


@passes(against="matmul", why="per-sample outer products added into grads[0]")
class MatMulOuterLoop(BookMatMul):
    """dW as a per-sample sum of outer products, accumulated into the zeroed grads[0]."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        dW = self.grads[0]
        dW[...] = 0
        for x_n, d_n in zip(self.x, dout, strict=True):
            dW += np.outer(x_n, d_n)
        return np.dot(dout, W.T)


@caught(
    against="matmul",
    check="grads[0]",
    kinds={"value"},
    diagnosis="transpose",
    why="dW = (dout.T @ x).reshape(W.shape)",
)
class MatMulDwTransposed(BookMatMul):
    """dW = dout.T @ x, reshaped to fit grads[0]: W's gradient transposed."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0][...] = np.dot(dout.T, self.x).reshape(W.shape)  # BUG
        return np.dot(dout, W.T)


@caught(
    against="matmul",
    check="grads[0]",
    kinds={"grads_rebound"},
    diagnosis="grads_rebound",
    why="self.grads[0] = dW replaces the array instead of writing into it",
)
class MatMulGradsRebound(BookMatMul):
    """``self.grads[0] = dW``: a new array, so an optimizer holding the old grads[0] never sees it."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        (W,) = self.params
        self.grads[0] = np.dot(self.x.T, dout)  # BUG
        return np.dot(dout, W.T)


# ==== Softmax =============================================================================================


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@passes(against="softmax", why="the book's dx -= y * sum(dx)")
class BookSoftmax:
    """The book's Softmax: dx = y * dout, then the row sums of dx times y subtracted in place."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = _softmax(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        dx = self.out * dout
        sumdx = np.sum(dx, axis=1, keepdims=True)
        dx -= self.out * sumdx
        return dx


@passes(against="softmax", why="per-sample Jacobian diag(y) - y y^T")
class SoftmaxJacobianLoop(BookSoftmax):
    """Each sample's full Jacobian diag(y) - y y^T applied to its dout."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        dx = np.empty_like(self.out)
        for n, y in enumerate(self.out):
            dx[n] = (np.diag(y) - np.outer(y, y)) @ dout[n]
        return dx


@passes(against="softmax", why="exp(x - logsumexp(x)), einsum backward")
class SoftmaxLogSumExp(BookSoftmax):
    """forward as exp(x - logsumexp(x)); backward with einsum."""

    def forward(self, x: Array) -> Array:
        m = x.max(axis=1, keepdims=True)
        self.out = np.exp(x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True)))
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        s = np.einsum("nc,nc->n", self.out, dout)[:, None]
        return self.out * (dout - s)


@caught(
    against="softmax",
    check="dx",
    kinds={"value"},
    diagnosis="other",
    why="dx = y * dout, without - y * sum(y * dout)",
)
class SoftmaxNoSumTerm(BookSoftmax):
    """dx = y * dout: the softmax treated as elementwise, the - y * sum(y * dout) term missing."""

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return self.out * dout  # BUG


@caught(
    against="softmax",
    check="out",
    kinds={"nan"},
    diagnosis="overflow",
    why="exp(x) without subtracting the maximum",
)
class SoftmaxNoMax(BookSoftmax):
    """forward without subtracting the row maximum: exp overflows for logits past 709 (88 in float32)."""

    def forward(self, x: Array) -> Array:
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(x)  # BUG
            self.out = e / e.sum(axis=1, keepdims=True)
        return self.out


# ==== SigmoidWithLoss ====================================================================================


class _SigmoidLossState:
    """The book's attributes; subclasses write forward and backward their own way."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.loss: Any = None
        self.y: Array | None = None
        self.t: Array | None = None


@passes(against="sigmoid_with_loss", why="logaddexp(0, x) - t x")
class SigmoidLossLogaddexp(_SigmoidLossState):
    """loss = mean(logaddexp(0, x) - t x), a stable softplus; dx = (y - t) dout / N."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        self.y = stable_sigmoid(x)
        self.loss = np.mean(np.logaddexp(0, x) - t * x)
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        dx = (self.y - self.t) * (dout / self.t.shape[0])
        return np.asarray(dx).astype(self.y.dtype, copy=False)


@passes(against="sigmoid_with_loss", why="the book's np.c_ pick, log stably")
class SigmoidLossPicked(_SigmoidLossState):
    """The book's picking of p_t from np.c_[1 - y, y], with log p taken stably as -softplus(-+x)."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        self.y = stable_sigmoid(x)
        # log sigmoid(x) and log(1 - sigmoid(x)) = log sigmoid(-x), each -softplus without overflow
        log_p = np.c_[-np.logaddexp(0, x), -np.logaddexp(0, -x)]
        n = x.shape[0]
        self.loss = -np.sum(log_p[np.arange(n), np.asarray(t, dtype=np.intp)]) / n
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        batch_size = self.t.shape[0]
        return np.asarray((self.y - self.t) * dout / batch_size).astype(self.y.dtype, copy=False)


@caught(
    against="sigmoid_with_loss",
    check="dx",
    kinds={"value"},
    diagnosis="scale",
    why="dx = (y - t) * dout, not divided by N",
)
class SigmoidLossNotDivided(SigmoidLossLogaddexp):
    """dx = (y - t) * dout: the loss is a mean, but its gradient is not divided by N."""

    def backward(self, dout: float = 1) -> Array:
        assert self.y is not None and self.t is not None
        return np.asarray((self.y - self.t) * dout).astype(self.y.dtype, copy=False)  # BUG


@caught(
    against="sigmoid_with_loss",
    check="loss",
    kinds={"nan", "value"},
    diagnosis="epsilon",
    # 1 - y rounds to a multiple of 1.1e-16 (x = 20 shrinks to that: the bias of an epsilon of about
    # 1e-15), and to 0 past x = 37 (an infinite loss)
    why="-t log y - (1 - t) log(1 - y): 1 - y rounds as if an epsilon were added, then to 0",
)
class SigmoidLossUnstable(SigmoidLossLogaddexp):
    """loss = -mean(t log y + (1 - t) log(1 - y)) with y = 1 / (1 + exp(-x)): 1 - y loses its digits as x
    grows, and log(0) is infinite for extreme logits."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            self.y = 1 / (1 + np.exp(-x))
            self.loss = -np.mean(t * np.log(self.y) + (1 - t) * np.log(1 - self.y))  # BUG
        return self.loss


@caught(
    against="sigmoid_with_loss",
    check="loss",
    kinds={"value"},
    diagnosis="epsilon",
    why="the book's -log(p + 1e-7): passes with --allow epsilon",
)
class BookSigmoidWithLoss(SigmoidLossLogaddexp):
    """The book's loss, cross_entropy_error(np.c_[1 - y, y], t): -mean log(p_t + 1e-7), capped at 16.1."""

    def forward(self, x: Array, t: Array) -> Any:
        self.t = t
        self.y = stable_sigmoid(x)
        y2 = np.c_[1 - self.y, self.y]
        n = x.shape[0]
        self.loss = -np.sum(np.log(y2[np.arange(n), np.asarray(t, dtype=np.intp)] + 1e-7)) / n  # BUG
        return self.loss


# ==== Embedding ===========================================================================================


@passes(against="embedding", why="the book's dW[...] = 0; np.add.at")
class BookEmbedding:
    """The book's Embedding: W[idx]; dW zeroed in place, then np.add.at."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx: Array | None = None

    def forward(self, idx: Array) -> Array:
        (W,) = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout: Array) -> None:
        (dW,) = self.grads
        dW[...] = 0
        np.add.at(dW, self.idx, dout)


@passes(against="embedding", why="a loop of dW[word] += row")
class EmbeddingLoop(BookEmbedding):
    """A loop over the words, each one's row of dout added to its row of dW."""

    def backward(self, dout: Array) -> None:
        assert self.idx is not None
        dW = self.grads[0]
        dW.fill(0)
        rows = dout.reshape(-1, dW.shape[1])
        for word, row in zip(np.ravel(self.idx), rows, strict=True):
            dW[word] += row


@passes(against="embedding", why="one-hot matrix products, einsum")
class EmbeddingOneHot(BookEmbedding):
    """forward and backward through a one-hot matrix: out = onehot(idx) @ W, dW = onehot(idx).T @ dout."""

    def forward(self, idx: Array) -> Array:
        (W,) = self.params
        self.idx = idx
        hot = np.eye(W.shape[0], dtype=W.dtype)[np.ravel(idx)]
        return (hot @ W).reshape(*np.shape(idx), W.shape[1])

    def backward(self, dout: Array) -> None:
        assert self.idx is not None
        dW = self.grads[0]
        hot = np.eye(dW.shape[0], dtype=dW.dtype)[np.ravel(self.idx)]
        dW[...] = np.einsum("nv,nd->vd", hot, dout.reshape(-1, dW.shape[1]))


@caught(
    against="embedding",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="dW[idx] = dout drops all but the last row of a repeated word",
)
class EmbeddingOverwrites(BookEmbedding):
    """``dW[idx] = dout``: a repeated word keeps only its last row of dout instead of their sum."""

    def backward(self, dout: Array) -> None:
        (dW,) = self.grads
        dW[...] = 0
        dW[self.idx] = dout  # BUG


@caught(
    against="embedding",
    check="grads[0]",
    kinds={"stateful", "stale", "dout_one"},
    diagnosis="stale",
    why="np.add.at without zeroing dW: gradients accumulate across calls",
)
class EmbeddingNotZeroed(BookEmbedding):
    """np.add.at without ``dW[...] = 0`` first: each backward adds to the previous call's gradient."""

    def backward(self, dout: Array) -> None:
        np.add.at(self.grads[0], self.idx, dout)
