"""Catalogue for the attention layers (``weight_sum``, ``attention_weight``, ``attention``,
``time_attention``): broken layers with one realistic mistake each, and right layers written in other ways
(einsum, per-sample loops, the book's own style, float32 ``dtype='f'`` buffers).

Every class has the book's API: empty ``params``/``grads`` lists, ``forward``/``backward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.catalogue import Array, caught, passes


def _softmax(s: Array) -> Array:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


# ==== the book's layers, as the broken ones start from ===================================================


@passes(against="weight_sum", why="the book's repeat and sum")
class BookWeightSum:
    """The book's WeightSum: dc repeated over T, da summed over H."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, hs: Array, a: Array) -> Array:
        n, t, _ = hs.shape
        ar = a.reshape(n, t, 1)
        self.cache = (hs, ar)
        return np.asarray(np.sum(hs * ar, axis=1))

    def backward(self, dc: Array) -> tuple[Array, Array]:
        hs, ar = self.cache
        n, t, h = hs.shape
        dt = dc.reshape(n, 1, h).repeat(t, axis=1)
        return self._dhs(dt, ar), np.asarray(np.sum(dt * hs, axis=self._da_axis()))

    def _dhs(self, dt: Array, ar: Array) -> Array:
        return dt * ar

    def _da_axis(self) -> int:
        return 2


class _Softmax:
    """The book's Softmax layer: backward dx = y * dout - y * sum(y * dout)."""

    def __init__(self) -> None:
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = _softmax(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        dx = self.out * dout
        dx -= self.out * np.sum(dx, axis=1, keepdims=True)
        return dx


@passes(against="attention_weight", why="the book's, with a Softmax layer")
class BookAttentionWeight:
    """The book's AttentionWeight: the scores through a Softmax layer."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.softmax = _Softmax()
        self.cache: Any = None

    def forward(self, hs: Array, h: Array) -> Array:
        n, _, hh = hs.shape
        hr = h.reshape(n, 1, hh)
        self.cache = (hs, hr)
        return self.softmax.forward(np.sum(hs * hr, axis=2))

    def backward(self, da: Array) -> tuple[Array, Array]:
        hs, hr = self.cache
        n, t, h = hs.shape
        ds = self._ds(da)
        dt = ds.reshape(n, t, 1).repeat(h, axis=2)
        return dt * hr, np.asarray(np.sum(dt * hs, axis=1))

    def _ds(self, da: Array) -> Array:
        return self.softmax.backward(da)


@passes(against="attention", why="the book's two sub-layers")
class BookAttention:
    """The book's Attention: AttentionWeight then WeightSum, hs's two gradients summed."""

    weight_cls: type = BookAttentionWeight
    sum_cls: type = BookWeightSum

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.attention_weight_layer = self.weight_cls()
        self.weight_sum_layer = self.sum_cls()
        self.attention_weight: Array | None = None

    def forward(self, hs: Array, h: Array) -> Array:
        a = self.attention_weight_layer.forward(hs, h)
        self.attention_weight = a
        return np.asarray(self.weight_sum_layer.forward(hs, a))

    def backward(self, dout: Array) -> Any:
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


@passes(against="time_attention", why="the book's loop of Attention")
class BookTimeAttention:
    """The book's TimeAttention: one Attention per decoder step, dhs_enc summed over the steps."""

    attention_cls: type = BookAttention

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.layers: list[Any] = []
        self.attention_weights: list[Array] = []

    def forward(self, hs_enc: Array, hs_dec: Array) -> Array:
        out = np.empty_like(hs_dec)
        self.layers, self.attention_weights = [], []
        for t in range(hs_dec.shape[1]):
            layer = self.attention_cls()
            out[:, t, :] = layer.forward(hs_enc, hs_dec[:, t, :])
            self.layers.append(layer)
            self.attention_weights.append(layer.attention_weight)
        return out

    def backward(self, dout: Array) -> tuple[Array, Array]:
        dhs_enc: Any = 0
        dhs_dec = np.empty_like(dout)
        for t, layer in enumerate(self.layers):
            dhs, dh = layer.backward(dout[:, t, :])
            dhs_enc += dhs
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec


# ==== broken ==============================================================================================


class _NaiveSoftmax(_Softmax):
    """exp(x) / sum(exp(x)) without subtracting the max: NaN once a score passes exp's limit (709 in
    float64), or when every score is below -745."""

    def forward(self, x: Array) -> Array:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            e = np.exp(x)
            self.out = np.asarray(e / e.sum(axis=1, keepdims=True))
        return self.out


# caught in float64 only where the aligned states at H = 32 push a score past exp's limit
@caught(
    against="attention_weight",
    check="a",
    kinds={"nan", "value"},
    diagnosis="overflow",
    why="softmax without max shift, in float64",
)
class AttentionWeightNaiveSoftmax(BookAttentionWeight):
    """The scores through a softmax without the max shift: right until hs . h passes ~709 in float64
    (aligned states at H = 32), where it returns NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.softmax = _NaiveSoftmax()


@caught(
    against="attention",
    check="out",
    kinds={"nan", "value"},
    diagnosis="overflow",
    why="softmax without max shift, in float64",
)
class AttentionNaiveSoftmax(BookAttention):
    """The book's Attention over an AttentionWeight whose softmax has no max shift."""

    weight_cls = AttentionWeightNaiveSoftmax


@caught(
    against="time_attention",
    check="out",
    kinds={"nan", "value"},
    diagnosis="overflow",
    why="softmax without max shift, in float64",
)
class TimeAttentionNaiveSoftmax(BookTimeAttention):
    """The book's TimeAttention over an Attention whose softmax has no max shift."""

    attention_cls = AttentionNaiveSoftmax


@caught(
    against="weight_sum",
    check="da",
    kinds={"shape", "value"},
    diagnosis="shape",
    why="da summed over T instead of H",
)
class WeightSumDaWrongAxis(BookWeightSum):
    """da = sum(dt * hs, axis=1): summed over the time steps instead of over H."""

    def _da_axis(self) -> int:
        return 1  # BUG


@caught(against="weight_sum", check="dhs", kinds={"value"}, diagnosis="other", why="dhs without the weights")
class WeightSumDhsUnweighted(BookWeightSum):
    """dhs = dc repeated over T: the weights a are left out of hs's gradient."""

    def _dhs(self, dt: Array, ar: Array) -> Array:
        return dt.copy()  # BUG


@caught(
    against="attention_weight",
    check="dhs",
    kinds={"value"},
    diagnosis="other",
    why="the softmax's backward without - a sum(a da)",
)
class AttentionWeightNoSoftmaxMean(BookAttentionWeight):
    """ds = a * da: the softmax's backward without its - a * sum(a * da) term."""

    def _ds(self, da: Array) -> Array:
        assert self.softmax.out is not None
        return self.softmax.out * da  # BUG


@caught(against="attention", check="dh", kinds={"value"}, diagnosis="other", why="dh = 0")
class AttentionDhZeros(BookAttention):
    """dh = zeros: the decoder state is treated as a constant of the attention."""

    def backward(self, dout: Array) -> Any:
        dhs, dh = super().backward(dout)
        return dhs, np.zeros_like(dh)  # BUG


@caught(against="attention", check="dh", kinds={"arity"}, diagnosis="other", why="backward returns dhs only")
class AttentionReturnsDhsOnly(BookAttention):
    """backward returns dhs alone: h's gradient is never returned."""

    def backward(self, dout: Array) -> Any:
        dhs, _ = super().backward(dout)
        return dhs  # BUG


@caught(
    against="attention",
    check="dhs",
    kinds={"value"},
    diagnosis="other",
    why="dhs through the weighted sum only",
)
class AttentionDhsOneBranch(BookAttention):
    """dhs = dhs0: hs's gradient through the weighted sum only, not through the weights."""

    def backward(self, dout: Array) -> Any:
        dhs0, da = self.weight_sum_layer.backward(dout)
        _, dh = self.attention_weight_layer.backward(da)
        return dhs0, dh


@caught(
    against="time_attention",
    check="dhs_enc",
    kinds={"value"},
    diagnosis="other",
    why="dhs_enc of the last decoder step only",
)
class TimeAttentionEncLastStep(BookTimeAttention):
    """dhs_enc = dhs in the loop: only the last decoder step's gradient reaches the encoder."""

    def backward(self, dout: Array) -> tuple[Array, Array]:
        dhs_enc: Any = 0
        dhs_dec = np.empty_like(dout)
        for t, layer in enumerate(self.layers):
            dhs_enc, dh = layer.backward(dout[:, t, :])  # BUG
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec


@caught(
    against="time_attention",
    check="dhs_enc",
    kinds={"value"},
    diagnosis="other",
    why="one Attention reused for every step",
)
class TimeAttentionOneLayer(BookTimeAttention):
    """One Attention reused for every decoder step: backward sees only the last step's cache."""

    def forward(self, hs_enc: Array, hs_dec: Array) -> Array:
        out = np.empty_like(hs_dec)
        layer = BookAttention()  # BUG
        self.layers, self.attention_weights = [], []
        for t in range(hs_dec.shape[1]):
            out[:, t, :] = layer.forward(hs_enc, hs_dec[:, t, :])
            self.layers.append(layer)
            self.attention_weights.append(layer.attention_weight)  # type: ignore[arg-type]
        return out


# ==== right, written otherwise ============================================================================


@passes(against="weight_sum", why="np.einsum")
class WeightSumEinsum:
    """np.einsum in both directions."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, hs: Array, a: Array) -> Array:
        self.cache = (hs, a)
        return np.asarray(np.einsum("nth,nt->nh", hs, a))

    def backward(self, dc: Array) -> tuple[Array, Array]:
        hs, a = self.cache
        return np.einsum("nt,nh->nth", a, dc), np.einsum("nth,nh->nt", hs, dc)


@passes(against="weight_sum", why="batched matmul")
class WeightSumMatmul:
    """Batched matrix products: c = a[:, None, :] @ hs, da = hs @ dc[:, :, None]."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, hs: Array, a: Array) -> Array:
        self.cache = (hs, a)
        return np.asarray((a[:, None, :] @ hs)[:, 0, :])

    def backward(self, dc: Array) -> tuple[Array, Array]:
        hs, a = self.cache
        return a[:, :, None] * dc[:, None, :], np.asarray((hs @ dc[:, :, None])[:, :, 0])


@passes(against="attention_weight", why="einsum and the softmax Jacobian")
class AttentionWeightEinsum:
    """Scores by einsum, the softmax's backward written as a Jacobian-vector product per sample."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, hs: Array, h: Array) -> Array:
        a = _softmax(np.einsum("nth,nh->nt", hs, h))
        self.cache = (hs, h, a)
        return a

    def backward(self, da: Array) -> tuple[Array, Array]:
        hs, h, a = self.cache
        jac = np.einsum("nt,ts->nts", a, np.eye(a.shape[1], dtype=a.dtype)) - np.einsum("nt,ns->nts", a, a)
        ds = np.einsum("nts,ns->nt", jac, da)
        return np.einsum("nt,nh->nth", ds, h), np.einsum("nt,nth->nh", ds, hs)


@passes(against="attention", why="a loop over the batch")
class AttentionPerSample:
    """A loop over the batch, each sample's attention written with 1-D and 2-D NumPy operations."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.cache: Any = None

    def forward(self, hs: Array, h: Array) -> Array:
        out = np.empty_like(h)
        weights = []
        for n in range(hs.shape[0]):
            a = _softmax(hs[n] @ h[n])
            out[n] = a @ hs[n]
            weights.append(a)
        self.cache = (hs, h, weights)
        return out

    def backward(self, dout: Array) -> tuple[Array, Array]:
        hs, h, weights = self.cache
        dhs, dh = np.empty_like(hs), np.empty_like(h)
        for n, a in enumerate(weights):
            da = hs[n] @ dout[n]
            ds = a * (da - a @ da)
            dhs[n] = np.outer(a, dout[n]) + np.outer(ds, h[n])
            dh[n] = ds @ hs[n]
        return dhs, dh


@passes(against="time_attention", why="every step at once by einsum")
class TimeAttentionEinsum:
    """Every decoder step at once: scores (N, T_dec, T_enc) by one einsum, no loop."""

    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.attention_weights: list[Array] = []
        self.cache: Any = None

    def forward(self, hs_enc: Array, hs_dec: Array) -> Array:
        a = _softmax(np.einsum("nuh,nth->nut", hs_dec, hs_enc))
        self.attention_weights = [a[:, u] for u in range(a.shape[1])]
        self.cache = (hs_enc, hs_dec, a)
        return np.asarray(np.einsum("nut,nth->nuh", a, hs_enc))

    def backward(self, dout: Array) -> tuple[Array, Array]:
        enc, dec, a = self.cache
        da = np.einsum("nuh,nth->nut", dout, enc)
        ds = a * (da - np.sum(a * da, axis=2, keepdims=True))
        denc = np.einsum("nut,nuh->nth", a, dout) + np.einsum("nut,nuh->nth", ds, dec)
        return denc, np.einsum("nut,nth->nuh", ds, enc)


@passes(against="time_attention", why="the book's 'f' buffers", float64=False)
class TimeAttentionF(BookTimeAttention):
    """The book's TimeAttention with the book's ``dtype='f'`` buffers for the outputs and gradients."""

    def forward(self, hs_enc: Array, hs_dec: Array) -> Array:
        n, t, h = hs_dec.shape
        out = np.empty((n, t, h), dtype="f")
        self.layers, self.attention_weights = [], []
        for s in range(t):
            layer = BookAttention()
            out[:, s, :] = layer.forward(hs_enc, hs_dec[:, s, :])
            self.layers.append(layer)
            self.attention_weights.append(layer.attention_weight)  # type: ignore[arg-type]
        return out

    def backward(self, dout: Array) -> tuple[Array, Array]:
        n, t, h = dout.shape
        dhs_enc = np.zeros(self.layers[0].weight_sum_layer.cache[0].shape, dtype="f") if self.layers else 0
        dhs_dec = np.empty((n, t, h), dtype="f")
        for s, layer in enumerate(self.layers):
            dhs, dh = layer.backward(dout[:, s, :])
            dhs_enc += dhs
            dhs_dec[:, s, :] = dh
        return np.asarray(dhs_enc), dhs_dec
