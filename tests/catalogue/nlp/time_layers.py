"""Catalogue for the time layers (``time_embedding``, ``time_affine``, ``time_softmax_with_loss``,
``time_sigmoid_with_loss``, ``time_dropout``): broken layers with one realistic mistake each, and right
layers written in other ways (einsum, per-step loops, the book's float32 style with ``dtype='f'`` buffers,
in-place grads and ``np.add.at``).

Every class has the book's API: ``params``/``grads`` lists written in place, ``forward``/``backward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.catalogue import Array, caught, log_softmax, passes, stable_sigmoid

# ==== TimeEmbedding =======================================================================================


class _TimeEmbeddingBase:
    """The right TimeEmbedding; subclasses override ``_scatter``, the step that holds their mistake."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx: Array | None = None

    def forward(self, xs: Array) -> Array:
        self.idx = xs
        return np.asarray(self.params[0][xs])

    def backward(self, dout: Array) -> None:
        dW = self.grads[0]
        dW[...] = 0
        self._scatter(dW, dout)
        return None

    def _scatter(self, dW: Array, dout: Array) -> None:
        np.add.at(dW, self.idx, dout)


@caught(
    against="time_embedding",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="dW[xs] = dout: repeated ids overwrite each other",
)
class TimeEmbeddingOverwrite(_TimeEmbeddingBase):
    """dW[xs] = dout: a word that occurs several times keeps only one of its gradients."""

    def _scatter(self, dW: Array, dout: Array) -> None:
        dW[self.idx] = dout  # BUG


@caught(
    against="time_embedding",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="dW[xs] += dout: buffered, a repeated id counts once",
)
class TimeEmbeddingFancyAdd(_TimeEmbeddingBase):
    """dW[xs] += dout: buffered fancy indexing adds each repeated word's gradient once, not once per
    occurrence."""

    def _scatter(self, dW: Array, dout: Array) -> None:
        dW[self.idx] += dout  # BUG


@caught(
    against="time_embedding",
    check="grads[0]",
    kinds={"stale", "stateful"},
    diagnosis="stale",
    why="np.add.at into grads[0] without zeroing it: the last batch's dW stays",
)
class TimeEmbeddingNotZeroed(_TimeEmbeddingBase):
    """np.add.at into grads[0] without zeroing it first: every backward adds to the previous batch's dW."""

    def backward(self, dout: Array) -> None:
        np.add.at(self.grads[0], self.idx, dout)
        return None


@caught(
    against="time_embedding",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="dW of the last time step only",
)
class TimeEmbeddingLastStep(_TimeEmbeddingBase):
    """One Embedding per time step, each writing dW in place (``=``): only the last step's gradient is
    left."""

    def backward(self, dout: Array) -> None:
        assert self.idx is not None
        dW = self.grads[0]
        for t in range(self.idx.shape[1]):
            dW[...] = 0  # BUG
            np.add.at(dW, self.idx[:, t], dout[:, t])
        return None


# ==== TimeAffine ==========================================================================================


class _TimeAffineBase:
    """The right TimeAffine (x reshaped to (N T, D)); subclasses override one step."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        W, b = self.params
        n, t, _ = x.shape
        self.x = x
        return np.asarray((x.reshape(n * t, -1) @ W + b).reshape(n, t, -1))

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        n, t, d = self.x.shape
        d2 = dout.reshape(n * t, -1)
        self.grads[0][...] = self.x.reshape(n * t, d).T @ d2
        self.grads[1][...] = self._db(dout)
        return np.asarray((d2 @ W.T).reshape(n, t, d))

    def _db(self, dout: Array) -> Array:
        return np.asarray(dout.sum(axis=(0, 1)))


@caught(
    against="time_affine",
    check="grads[1]",
    kinds={"value"},
    diagnosis="other",
    why="db summed over the batch at the last step only",
)
class TimeAffineDbLastStep(_TimeAffineBase):
    """db = dout[:, -1].sum(axis=0): summed over the batch but not over time (the last step only)."""

    def _db(self, dout: Array) -> Array:
        return np.asarray(dout[:, -1].sum(axis=0))  # BUG


@caught(
    against="time_affine",
    check="grads[1]",
    kinds={"value"},
    diagnosis="scale",
    why="db averaged over time instead of summed",
)
class TimeAffineDbMeanOverTime(_TimeAffineBase):
    """db = dout.sum(axis=0).mean(axis=0): summed over the batch, averaged over time."""

    def _db(self, dout: Array) -> Array:
        return np.asarray(dout.sum(axis=0).mean(axis=0))  # BUG


@caught(
    against="time_affine",
    check="grads[0]",
    kinds={"value"},
    diagnosis="other",
    why="dW written, not accumulated, in the per-step loop",
)
class TimeAffineDwLastStep(_TimeAffineBase):
    """A per-step loop that writes dW in place (``=``) at every step: only the last step's dW is left."""

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        dx = np.empty_like(self.x)
        for t in range(self.x.shape[1]):
            self.grads[0][...] = self.x[:, t].T @ dout[:, t]  # BUG
            dx[:, t] = dout[:, t] @ W.T
        self.grads[1][...] = dout.sum(axis=(0, 1))
        return dx


# ==== TimeSoftmaxWithLoss =================================================================================


class _TimeSoftmaxBase:
    """The right TimeSoftmaxWithLoss (labels with -1 ignored, or one-hot read by argmax); subclasses
    override ``_count`` or ``backward``."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.ignore_label = -1
        self.cache: Any = None

    def _count(self, mask: Array) -> Any:
        return mask.sum()

    def forward(self, xs: Array, ts: Array) -> Any:
        n, t, v = xs.shape
        if ts.ndim == 3:
            ts = ts.argmax(axis=2)
        mask = (ts != self.ignore_label).reshape(n * t)
        ts = np.where(mask, ts.reshape(n * t), 0)
        logp = log_softmax(xs.reshape(n * t, v))
        count = self._count(mask)
        loss = -np.sum(logp[np.arange(n * t), ts] * mask) / count
        self.cache = (ts, np.exp(logp), mask, count, xs.shape)
        return loss

    def backward(self, dout: Any = 1) -> Array:
        ts, ys, mask, count, shape = self.cache
        dx = ys.copy()
        dx[np.arange(len(ts)), ts] -= 1
        dx *= dout / count
        dx *= mask[:, None]
        return np.asarray(dx.reshape(shape))


@caught(
    against="time_softmax_with_loss",
    check="loss",
    kinds={"value"},
    diagnosis="scale",
    why="the mean over N * T labels, the ignored ones included",
)
class TimeSoftmaxLossDividesByNT(_TimeSoftmaxBase):
    """loss /= N * T: the mean runs over every label, the ignored ones included."""

    def _count(self, mask: Array) -> Any:
        return mask.size  # BUG


@caught(
    against="time_softmax_with_loss",
    check="dxs",
    kinds={"value"},
    diagnosis="other",
    why="backward does not zero the ignored steps",
)
class TimeSoftmaxLossBackwardUnmasked(_TimeSoftmaxBase):
    """backward forgets the mask: the ignored steps get the softmax's gradient (and -1 picks the last
    class)."""

    def backward(self, dout: Any = 1) -> Array:
        ts, ys, _, count, shape = self.cache
        dx = ys.copy()
        dx[np.arange(len(ts)), ts] -= 1
        dx *= dout / count
        return np.asarray(dx.reshape(shape))


@caught(
    against="time_softmax_with_loss",
    check="dxs",
    kinds={"value"},
    diagnosis="ignores_dout",
    why="dxs ignores dout",
)
class TimeSoftmaxLossIgnoresDout(_TimeSoftmaxBase):
    """The book-1 habit in a time layer: dxs = (ys - ts) / count, right only for dout = 1."""

    def backward(self, dout: Any = 1) -> Array:
        return super().backward(1)  # BUG


# ==== TimeSigmoidWithLoss =================================================================================


class _TimeSigmoidBase:
    """The right TimeSigmoidWithLoss: mean binary cross entropy over N * T, from a stable softplus."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, xs: Array, ts: Array) -> Any:
        t = ts.astype(xs.dtype)
        per = np.logaddexp(0, -xs) * t + np.logaddexp(0, xs) * (1 - t)
        self.cache = (stable_sigmoid(xs), t)
        return np.mean(per)

    def backward(self, dout: Any = 1) -> Array:
        y, t = self.cache
        return np.asarray((y - t) * dout / self._n(y))

    def _n(self, y: Array) -> int:
        return int(y.size)


@caught(
    against="time_sigmoid_with_loss",
    check="dxs",
    kinds={"value"},
    diagnosis="scale",
    why="dxs divided by N, not N * T",
)
class TimeSigmoidLossBatchOnly(_TimeSigmoidBase):
    """dxs = dout (y - t) / N: a per-step SigmoidWithLoss's backward, the 1 / T of the mean over time
    left out."""

    def _n(self, y: Array) -> int:
        return int(y.shape[0])  # BUG


# ==== TimeDropout =========================================================================================


class _TimeDropoutBase:
    """The right TimeDropout (inverted; ``self.mask`` holds the scaled mask, as in the book)."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None
        self.train_flg = True

    def forward(self, xs: Array) -> Array:
        if not self.train_flg:
            return xs
        flg = np.random.rand(*xs.shape) > self.dropout_ratio
        self.mask = flg.astype(xs.dtype) * self._scale()
        return xs * self.mask

    def _scale(self) -> float:
        return 1.0 / (1.0 - self.dropout_ratio)

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return dout * self.mask


@caught(
    against="time_dropout",
    check="dxs",
    kinds={"value"},
    diagnosis="scale",
    why="no 1 / (1 - ratio) scale: book 1's dropout",
)
class TimeDropoutNotInverted(_TimeDropoutBase):
    """The first book's dropout: the kept elements are not scaled by 1 / (1 - ratio)."""

    def _scale(self) -> float:
        return 1.0  # BUG


@caught(against="time_dropout", check="dxs", kinds={"value"}, diagnosis="scale", why="dxs scaled twice")
class TimeDropoutScaledTwice(_TimeDropoutBase):
    """backward multiplies the (already scaled) mask by 1 / (1 - ratio) once more."""

    def backward(self, dout: Array) -> Array:
        assert self.mask is not None
        return dout * self.mask / (1.0 - self.dropout_ratio)  # BUG


@caught(against="time_dropout", check="dxs", kinds={"value"}, diagnosis="other", why="dxs without the mask")
class TimeDropoutBackwardIgnoresMask(_TimeDropoutBase):
    """backward scales dout but forgets the mask: the dropped elements get a gradient."""

    def backward(self, dout: Array) -> Array:
        return dout / (1.0 - self.dropout_ratio)  # BUG


@caught(
    against="time_dropout",
    check="state",
    kinds={"stale"},
    diagnosis="stale",
    why="the mask drawn once and reused by every later forward",
)
class TimeDropoutMaskOnce(_TimeDropoutBase):
    """The mask drawn on the first forward and kept for every later batch of its shape: its gradients match
    that very mask, so only the row's check that each forward draws anew sees it."""

    def forward(self, xs: Array) -> Array:
        if not self.train_flg:
            return xs
        if self.mask is None or self.mask.shape != xs.shape:  # BUG
            flg = np.random.rand(*xs.shape) > self.dropout_ratio
            self.mask = flg.astype(xs.dtype) * self._scale()
        return xs * self.mask


@caught(
    against="time_dropout",
    check="state",
    kinds={"missing"},
    diagnosis="other",
    why="rand < ratio: the kept share is ratio, not 1 - ratio",
)
class TimeDropoutKeepsRatio(_TimeDropoutBase):
    """``rand < ratio``: keeps the fraction ratio of the elements instead of 1 - ratio (its gradients match
    its own mask, so only the row's count of the kept elements sees it)."""

    def forward(self, xs: Array) -> Array:
        if not self.train_flg:
            return xs
        flg = np.random.rand(*xs.shape) < self.dropout_ratio  # BUG
        self.mask = flg.astype(xs.dtype) * self._scale()
        return xs * self.mask


# ==== right, written otherwise ============================================================================


@passes(against="time_embedding", why="per-step np.add.at into 'f' buffers", float64=False)
class TimeEmbeddingBook:
    """The book's style in float32: one step at a time into a ``dtype='f'`` buffer, each step's dW
    accumulated with ``np.add.at`` into a float32 buffer, then written in place."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.W = W
        self.idx: Array | None = None

    def forward(self, xs: Array) -> Array:
        n, t = xs.shape
        out = np.empty((n, t, self.W.shape[1]), dtype="f")
        for s in range(t):
            out[:, s, :] = self.W[xs[:, s]]
        self.idx = xs
        return out

    def backward(self, dout: Array) -> None:
        assert self.idx is not None
        grad = np.zeros_like(self.W, dtype="f")
        for s in range(self.idx.shape[1]):
            step = np.zeros_like(self.W, dtype="f")
            np.add.at(step, self.idx[:, s], dout[:, s, :])
            grad += step
        self.grads[0][...] = grad
        return None


@passes(against="time_embedding", why="one-hot einsum")
class TimeEmbeddingOneHot:
    """dW = onehot(xs)^T dout, one einsum: the scatter as a matrix product."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.onehot: Array | None = None

    def forward(self, xs: Array) -> Array:
        W = self.params[0]
        self.onehot = np.eye(W.shape[0], dtype=W.dtype)[xs]
        return np.asarray(np.einsum("ntv,vd->ntd", self.onehot, W))

    def backward(self, dout: Array) -> None:
        self.grads[0][...] = np.einsum("ntv,ntd->vd", self.onehot, dout)
        return None


@passes(against="time_embedding", why="np.bincount per column")
class TimeEmbeddingBincount:
    """dW column by column with np.bincount(ids, weights=dout[..., d], minlength=V)."""

    def __init__(self, W: Array) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx: Array | None = None

    def forward(self, xs: Array) -> Array:
        self.idx = xs.ravel()
        return np.take(self.params[0], xs, axis=0)

    def backward(self, dout: Array) -> None:
        assert self.idx is not None
        v, d = self.params[0].shape
        flat = dout.reshape(-1, d)
        for j in range(d):
            self.grads[0][:, j] = np.bincount(self.idx, weights=flat[:, j], minlength=v)
        return None


@passes(against="time_affine", why="np.einsum on (N, T, D)")
class TimeAffineEinsum:
    """np.einsum on the un-reshaped (N, T, D) input."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        W, b = self.params
        self.x = x
        return np.asarray(np.einsum("ntd,dm->ntm", x, W) + b)

    def backward(self, dout: Array) -> Array:
        W, _ = self.params
        self.grads[0][...] = np.einsum("ntd,ntm->dm", self.x, dout)
        self.grads[1][...] = np.einsum("ntm->m", dout)
        return np.asarray(np.einsum("ntm,dm->ntd", dout, W))


@passes(against="time_affine", why="per-step loop into 'f' buffers", float64=False)
class TimeAffineBookLoop:
    """The book's Simple_TimeAffine in the params/grads convention and float32: one affine per step into
    ``dtype='f'`` buffers, dW and db accumulated over the steps, then written in place."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None

    def forward(self, xs: Array) -> Array:
        W, b = self.params
        n, t, _ = xs.shape
        out = np.empty((n, t, W.shape[1]), dtype="f")
        for s in range(t):
            out[:, s, :] = np.dot(xs[:, s, :], W) + b
        self.x = xs
        return out

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        W, _ = self.params
        n, t, d = self.x.shape
        dxs = np.empty((n, t, d), dtype="f")
        dW, db = np.zeros_like(W, dtype="f"), np.zeros(W.shape[1], dtype="f")
        for s in range(t):
            dxs[:, s, :] = np.dot(dout[:, s, :], W.T)
            dW += np.dot(self.x[:, s, :].T, dout[:, s, :])
            db += dout[:, s, :].sum(axis=0)
        self.grads[0][...] = dW
        self.grads[1][...] = db
        return dxs


@passes(against="time_softmax_with_loss", why="per-step loop")
class TimeSoftmaxLossPerStep:
    """A loop over the time steps, each a softmax-with-loss over its kept labels, summed and divided by
    the total count of kept labels."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, xs: Array, ts: Array) -> Any:
        if ts.ndim == 3:
            ts = ts.argmax(axis=2)
        total, count, steps = 0.0, 0, []
        for s in range(xs.shape[1]):
            keep = ts[:, s] != -1
            logp = log_softmax(xs[:, s, :])
            rows = np.nonzero(keep)[0]
            total -= np.sum(logp[rows, ts[rows, s]])
            count += len(rows)
            steps.append((np.exp(logp), rows, ts[rows, s]))
        self.cache = (steps, count, xs.shape)
        return total / count

    def backward(self, dout: Any = 1) -> Array:
        steps, count, shape = self.cache
        dxs = np.zeros(shape, dtype=steps[0][0].dtype)
        for s, (y, rows, labels) in enumerate(steps):
            d = y[rows]
            d[np.arange(len(rows)), labels] -= 1
            dxs[rows, s, :] = d * dout / count
        return dxs


@passes(against="time_softmax_with_loss", why="the book's, stable, 'f'", float64=False)
class TimeSoftmaxLossBookF:
    """The book's TimeSoftmaxWithLoss with a stable log-softmax, in float32: ``dtype='f'`` buffers, the
    ignored labels masked with ``mask[:, np.newaxis]``."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None
        self.ignore_label = -1

    def forward(self, xs: Array, ts: Array) -> Any:
        n, t, v = xs.shape
        if ts.ndim == 3:
            ts = ts.argmax(axis=2)
        mask = ts != self.ignore_label
        xs, ts, mask = xs.reshape(n * t, v), ts.reshape(n * t), mask.reshape(n * t)
        logp = np.empty((n * t, v), dtype="f")
        logp[...] = log_softmax(xs)
        ls = logp[np.arange(n * t), ts] * mask
        self.cache = (ts, np.exp(logp), mask, (n, t, v))
        return -np.sum(ls) / mask.sum()

    def backward(self, dout: Any = 1) -> Array:
        ts, ys, mask, (n, t, v) = self.cache
        dx = ys
        dx[np.arange(n * t), ts] -= 1
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]
        return np.asarray(dx.reshape((n, t, v)))


@passes(against="time_sigmoid_with_loss", why="the book's per-step loop into 'f'", float64=False)
class TimeSigmoidLossPerStep:
    """The book's TimeSigmoidWithLoss: a stable binary cross entropy per step, averaged over T, and
    backward's dout scaled by 1 / T into a ``dtype='f'`` buffer."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, xs: Array, ts: Array) -> Any:
        t = xs.shape[1]
        loss, ys = 0.0, []
        for s in range(t):
            x, y = xs[:, s], ts[:, s]
            loss += np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
            ys.append((stable_sigmoid(x), y))
        self.cache = (ys, xs.shape)
        return loss / t

    def backward(self, dout: Any = 1) -> Array:
        ys, (n, t) = self.cache
        dxs = np.empty((n, t), dtype="f")
        dout *= 1 / t
        for s, (y, label) in enumerate(ys):
            dxs[:, s] = (y - label) * dout / n
        return dxs


@passes(against="time_dropout", why="the book's float32 scaled mask")
class TimeDropoutBook:
    """The book's TimeDropout: the boolean draw turned into a float32 mask times the scale."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None
        self.train_flg = True

    def forward(self, xs: Array) -> Array:
        if self.train_flg:
            flg = np.random.rand(*xs.shape) > self.dropout_ratio
            scale = 1 / (1.0 - self.dropout_ratio)
            self.mask = flg.astype(np.float32) * scale
            return xs * self.mask
        return xs

    def backward(self, dout: Array) -> Array:
        return dout * self.mask


@passes(against="time_dropout", why="boolean mask, np.where")
class TimeDropoutBooleanMask:
    """A boolean mask kept, the scale applied separately with np.where."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.dropout_ratio = dropout_ratio
        self.mask: Array | None = None
        self.train_flg = True

    def forward(self, xs: Array) -> Array:
        self.mask = np.random.rand(*xs.shape) >= self.dropout_ratio
        return np.where(self.mask, xs / (1 - self.dropout_ratio), 0).astype(xs.dtype)

    def backward(self, dout: Array) -> Array:
        return np.where(self.mask, dout / (1 - self.dropout_ratio), 0).astype(dout.dtype)
