"""Dropout and batch normalization (book sections 6.4.3 and 6.3), with a per-channel variant.

Each layer has the book's constructor and ``forward(x, train_flg=True)``. The book defines backward only
after a train-mode forward; here backward after a test-mode forward is the derivative of what that forward
computed (a fixed scale for Dropout, an affine map with constant statistics for batch normalization).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, like, not_ready
from ._work import Work
from ._work import kept as _kept

__all__ = ["EPS", "BatchNormalization", "ChannelBatchNormalization", "Dropout"]

Array = NDArray[Any]
EPS = 10e-7
"""The book's epsilon under the square root: std = sqrt(var + 10e-7)."""
_FLOAT64 = np.dtype(np.float64)


def _float_dtype(x: Array) -> np.dtype[Any]:
    """The dtype a layer's output keeps: x's own when it is floating, float64 otherwise."""
    return x.dtype if x.dtype.kind == "f" else _FLOAT64


class Dropout:
    """Non-inverted dropout, as in the first book.

    train (``train_flg=True``): out = x * mask with mask = rand(*x.shape) > dropout_ratio, kept in
    ``self.mask`` (boolean); each element is dropped with probability ``dropout_ratio`` and the kept ones are
    *not* rescaled. test: out = x * (1 - dropout_ratio), the expected value of the train-mode output.

    backward: dx = dout * mask after a train-mode forward; dx = dout * (1 - dropout_ratio) after a test-mode
    one (the book leaves that case undefined).

    ``rng`` (keyword only, not in the book): a ``numpy.random.Generator`` or a seed for one, which makes the
    masks reproducible; by default the mask comes from ``np.random.rand``, as in the book.
    """

    def __init__(self, dropout_ratio: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        if not 0.0 <= dropout_ratio <= 1.0:
            raise ValueError(f"Dropout.__init__: dropout_ratio must be in [0, 1], got {dropout_ratio!r}")
        self.dropout_ratio = dropout_ratio
        self.rng = rng if rng is None or isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.mask: NDArray[np.bool_] | None = None
        self.train_flg: bool | None = None
        self._shape: tuple[int, ...] = ()

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        xa = np.asarray(x)
        self._shape, self.train_flg = xa.shape, bool(train_flg)
        if not train_flg:
            out: Array = xa * (1.0 - self.dropout_ratio)
            return out
        draws = np.random.rand(*xa.shape) if self.rng is None else self.rng.random(xa.shape)
        self.mask = np.asarray(draws > self.dropout_ratio)
        kept: Array = xa * self.mask
        return kept

    def backward(self, dout: ArrayLike) -> Array:
        if self.train_flg is None:
            raise not_ready("Dropout")
        check_dout("Dropout", dout, self._shape)
        d = np.asarray(dout)
        if not self.train_flg:
            scaled: Array = d * (1.0 - self.dropout_ratio)
            return scaled
        if self.mask is None:  # unreachable after a train-mode forward; keeps the type checker honest
            raise not_ready("Dropout")
        dx: Array = d * self.mask
        return dx


class BatchNormalization:
    """Batch normalization as in the first book, for x (N, D) or (N, C, H, W).

    A 4-D x is seen as (N, C*H*W): each of the D = C*H*W features is normalized on its own, and gamma,
    beta, running_mean and running_var have shape (D,). (``ChannelBatchNormalization`` normalizes per
    channel instead.)

    train: mu, var = mean and (biased) variance of each feature over the batch, std = sqrt(var + 10e-7),
    xn = (x - mu) / std, out = gamma * xn + beta; the running statistics become
    momentum * running + (1 - momentum) * batch statistic (new arrays: the caller's are never written).
    test: the same with mu, var = running_mean, running_var, which are constants.
    A missing running_mean / running_var starts as zeros on the first forward, as in the book.

    backward (train), with dxn = gamma * dout and sums over the batch (N rows):
        dbeta = sum(dout), dgamma = sum(xn * dout),
        dvar = -sum(dxn * xc) / (2 std^3),  dxc = dxn / std + (2 / N) xc dvar,
        dx = dxc - sum(dxc) / N
    backward (test): dx = gamma * dout / std, dgamma and dbeta as above.

    Degenerate batch: train mode with a single sample (N == 1) has no spread to estimate, so every xn is 0
    and the gradient dx is identically 0. Rather than train on silent zeros, forward raises ``ValueError``
    naming the layer and the shape; use ``train_flg=False`` for a single sample.
    """

    _name: ClassVar[str] = "BatchNormalization"

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        momentum: float = 0.9,
        running_mean: Array | None = None,
        running_var: Array | None = None,
    ) -> None:
        gamma = gamma if isinstance(gamma, np.ndarray) else np.asarray(gamma)
        beta = beta if isinstance(beta, np.ndarray) else np.asarray(beta)
        if gamma.ndim != 1 or beta.shape != gamma.shape:
            raise ValueError(
                f"{self._name}.__init__: gamma of shape {gamma.shape} and beta of shape {beta.shape} must "
                "both be 1-D of the same shape"
            )
        for label, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if stat is not None and np.shape(stat) != gamma.shape:
                raise ValueError(
                    f"{self._name}.__init__: {label} of shape {np.shape(stat)} does not match gamma of "
                    f"shape {gamma.shape}"
                )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{self._name}.__init__: momentum must be in [0, 1], got {momentum!r}")
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean = None if running_mean is None else np.asarray(running_mean)
        self.running_var = None if running_var is None else np.asarray(running_var)
        self.input_shape: tuple[int, ...] | None = None
        self._dtype: np.dtype[Any] = np.dtype(np.float64)
        self.train_flg = True
        self.batch_size = 0
        self.xc: Array | None = None
        self.xn: Array | None = None
        self.std: Array | None = None
        self._work: Work = {}  # see backprop._work
        self.dgamma: Array | None = None
        self.dbeta: Array | None = None

    # ---- the layout: rows are samples of the normalized features ------------------------------------

    def _to_rows(self, x: Array, method: str) -> Array:
        """x (N, D) or (N, C, H, W) as (N, D): one row per sample, one column per feature."""
        if x.ndim not in (2, 4):
            raise ValueError(
                f"{self._name}.{method}: x of shape {x.shape} must be 2-D (N, D) or 4-D (N, C, H, W)"
            )
        return x.reshape(x.shape[0], -1)

    def _from_rows(self, rows: Array, shape: tuple[int, ...]) -> Array:
        return rows.reshape(shape)

    def _too_small(self, rows: Array, shape: tuple[int, ...]) -> str:
        return f"x of shape {shape} is a batch of N = {shape[0]}: batch statistics need N >= 2"

    # ---- forward and backward -----------------------------------------------------------------------

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        xa = np.asarray(x)
        rows = self._to_rows(xa, "forward")
        if rows.shape[1] != self.gamma.shape[0]:
            raise ValueError(
                f"{self._name}.forward: x of shape {xa.shape} has {rows.shape[1]} features but gamma has "
                f"shape {self.gamma.shape}"
            )
        if train_flg and rows.shape[0] < 2:
            raise ValueError(
                f"{self._name}.forward: train_flg=True but {self._too_small(rows, xa.shape)}; "
                "use train_flg=False (the running statistics) for a single sample"
            )
        dtype = _float_dtype(xa)
        if self.running_mean is None or self.running_var is None:
            self.running_mean = np.zeros(rows.shape[1], dtype=dtype)
            self.running_var = np.zeros(rows.shape[1], dtype=dtype)
        n = rows.shape[0]
        if train_flg:
            mu = rows.mean(axis=0)
            xc = _kept(self._work, "xc", rows.shape, np.result_type(rows, mu))
            np.subtract(rows, mu, out=xc)
            var = np.einsum("ij,ij->j", xc, xc) / n  # the biased variance, without a temporary
            keep = self.momentum
            self.running_mean = keep * self.running_mean + (1.0 - keep) * mu
            self.running_var = keep * self.running_var + (1.0 - keep) * var
        else:
            xc, var = rows - self.running_mean, self.running_var
        std = np.sqrt(var + EPS)
        xn = _kept(self._work, "xn", xc.shape, np.result_type(xc, std))
        np.divide(xc, std, out=xn)
        self.input_shape, self.train_flg, self.batch_size = xa.shape, bool(train_flg), n
        self._dtype = dtype
        self.xc, self.xn, self.std = xc, xn, std
        out = self.gamma * xn
        out += self.beta
        out = out.astype(dtype, copy=False)
        return self._from_rows(out, xa.shape)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the work arrays; xc and xn are two, so a copy takes its own."""
        own = {k: None if getattr(self, k) is None else getattr(self, k).copy() for k in ("xc", "xn")}
        return {**self.__dict__, "_work": {}, **own}

    def backward(self, dout: ArrayLike) -> Array:
        if self.xc is None or self.xn is None or self.std is None or self.input_shape is None:
            raise not_ready(self._name)
        check_dout(self._name, dout, self.input_shape)
        d = self._to_rows(np.asarray(dout), "backward")
        dbeta, dgamma = d.sum(axis=0), np.einsum("ij,ij->j", self.xn, d)
        # an integer gamma or beta has no gradient dtype of its own: float64 stands in
        self.dbeta, self.dgamma = like(dbeta, self.beta, _FLOAT64), like(dgamma, self.gamma, _FLOAT64)
        if self.train_flg:
            # dx = gamma / (N std) * (N dout - sum(dout) - xn * sum(dout * xn)): the mean's and the
            # variance's paths through the batch statistics, folded into the two sums just taken
            n = self.batch_size
            dx = d * n
            dx -= dbeta
            variance_path = _kept(self._work, "variance_path", self.xn.shape, np.result_type(self.xn, dgamma))
            np.multiply(self.xn, dgamma, out=variance_path)
            dx -= variance_path
            dx *= self.gamma / (n * self.std)
        else:
            dx = d * (self.gamma / self.std)
        return self._from_rows(like(dx, self._dtype), self.input_shape)


class ChannelBatchNormalization(BatchNormalization):
    """Per-channel ("spatial") batch normalization of x (N, C, H, W): the statistics of each channel are
    taken over N, H and W together, and gamma, beta, running_mean and running_var have shape (C,).

    Same constructor, modes, running-statistics update and backward formulas as ``BatchNormalization``,
    with the N*H*W values of a channel playing the role of the batch (the sums in backward run over them).

    Degenerate batch: train mode needs at least two values per channel (N*H*W >= 2); a single sample of a
    1x1 map raises ``ValueError``. A single sample with H*W >= 2 is fine.
    """

    _name: ClassVar[str] = "ChannelBatchNormalization"

    def _to_rows(self, x: Array, method: str) -> Array:
        """x (N, C, H, W) as (N*H*W, C): one row per sample and position, one column per channel."""
        if x.ndim != 4:
            raise ValueError(f"{self._name}.{method}: x of shape {x.shape} must be 4-D (N, C, H, W)")
        return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])

    def _from_rows(self, rows: Array, shape: tuple[int, ...]) -> Array:
        n, c, h, w = shape
        return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def _too_small(self, rows: Array, shape: tuple[int, ...]) -> str:
        return f"x of shape {shape} has N*H*W = {rows.shape[0]} value(s) per channel: batch statistics need 2"
