"""The attention layers of the second book's chapter 8 (``ch08/attention_layer.py``).

hs (N, T, H) holds the encoder's hidden states and h (N, H) one decoder state: AttentionWeight scores each
encoder step by a dot product and normalizes the scores with a softmax, WeightSum mixes the encoder states
with those weights, Attention chains the two and TimeAttention applies Attention to every decoder step.
None has parameters: ``params`` and ``grads`` are empty lists, as in the book.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._errors import check_dout, not_ready
from ..functions import as_float as _float
from .base_model import Layer

__all__ = ["Attention", "AttentionWeight", "TimeAttention", "WeightSum"]

Array = NDArray[Any]


def _states(layer: str, hs: ArrayLike) -> Array:
    hsa = _float(hs)
    if hsa.ndim != 3:
        raise ValueError(f"{layer}.forward: hs of shape {hsa.shape} must be (N, T, H)")
    return hsa


def _softmax(s: Array) -> Array:
    """softmax over the last axis, shifted by the maximum so that exp never overflows."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    out: Array = e / e.sum(axis=-1, keepdims=True)
    return out


class WeightSum(Layer):
    """c[n] = sum_t a[n, t] hs[n, t] for hs (N, T, H) and weights a (N, T): c (N, H).

    backward(dc) -> (dhs, da): dhs[n, t] = a[n, t] dc[n], da[n, t] = hs[n, t] . dc[n] (summed over H).
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: tuple[Array, Array] | None = None

    def forward(self, hs: ArrayLike, a: ArrayLike) -> Array:
        hsa, aa = _states("WeightSum", hs), _float(a)
        if aa.shape != hsa.shape[:2]:
            raise ValueError(
                f"WeightSum.forward: a of shape {aa.shape} must be (N, T) = {hsa.shape[:2]} for hs of "
                f"shape {hsa.shape}"
            )
        ar = aa.reshape(*aa.shape, 1)
        self.cache = (hsa, ar)
        c: Array = np.sum(hsa * ar, axis=1)
        return c

    def backward(self, dc: ArrayLike) -> tuple[Array, Array]:
        if self.cache is None:
            raise not_ready("WeightSum")
        hs, ar = self.cache
        n, _, h = hs.shape
        check_dout("WeightSum", dc, (n, h))
        dt = np.asarray(dc).reshape(n, 1, h)  # broadcast over T rather than the book's repeat
        dhs: Array = dt * ar
        da: Array = np.sum(dt * hs, axis=2)
        return dhs, da


class AttentionWeight(Layer):
    """a = softmax_t(s) with the scores s[n, t] = hs[n, t] . h[n], for hs (N, T, H) and h (N, H): a (N, T).

    backward(da) -> (dhs, dh): ds = a * (da - sum_t a da) (the softmax's backward), then
    dhs[n, t] = ds[n, t] h[n] and dh[n] = sum_t ds[n, t] hs[n, t].
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: tuple[Array, Array, Array] | None = None

    def forward(self, hs: ArrayLike, h: ArrayLike) -> Array:
        hsa, ha = _states("AttentionWeight", hs), _float(h)
        n, _, hh = hsa.shape
        if ha.shape != (n, hh):
            raise ValueError(
                f"AttentionWeight.forward: h of shape {ha.shape} must be (N, H) = {(n, hh)} for hs of "
                f"shape {hsa.shape}"
            )
        hr = ha.reshape(n, 1, hh)
        a = _softmax(np.sum(hsa * hr, axis=2))
        self.cache = (hsa, hr, a)
        return a

    def backward(self, da: ArrayLike) -> tuple[Array, Array]:
        if self.cache is None:
            raise not_ready("AttentionWeight")
        hs, hr, a = self.cache
        check_dout("AttentionWeight", da, a.shape)
        dx = a * np.asarray(da)
        ds = dx - a * dx.sum(axis=1, keepdims=True)
        dt = ds[:, :, np.newaxis]
        dhs: Array = dt * hr
        dh: Array = np.sum(dt * hs, axis=1)
        return dhs, dh


class Attention(Layer):
    """c = WeightSum(hs, AttentionWeight(hs, h)) for hs (N, T, H) and h (N, H): c (N, H).

    ``attention_weight`` keeps the last weights a (N, T). backward(dout) -> (dhs, dh): hs receives the
    gradients of both sub-layers, summed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight: Array | None = None

    def forward(self, hs: ArrayLike, h: ArrayLike) -> Array:
        a = self.attention_weight_layer.forward(hs, h)
        out = self.weight_sum_layer.forward(hs, a)
        self.attention_weight = a
        return out

    def backward(self, dout: ArrayLike) -> tuple[Array, Array]:
        if self.attention_weight is None:
            raise not_ready("Attention")
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


def _weights_of(layer: Attention) -> Array:
    """The weights of an Attention after its forward."""
    if layer.attention_weight is None:
        raise not_ready("Attention")
    return layer.attention_weight


class TimeAttention(Layer):
    """Attention of every decoder state on the encoder states: out[:, t] = Attention(hs_enc, hs_dec[:, t])
    for hs_enc (N, T_enc, H) and hs_dec (N, T_dec, H): out (N, T_dec, H).

    ``layers`` keeps one Attention per decoder step and ``attention_weights`` their weights, a list of
    T_dec arrays (N, T_enc), as in the book. backward(dout) -> (dhs_enc, dhs_dec): dhs_enc sums the
    gradients of every step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers: list[Attention] | None = None
        self.attention_weights: list[Array] | None = None
        self._enc: Array | None = None

    def forward(self, hs_enc: ArrayLike, hs_dec: ArrayLike) -> Array:
        enc, dec = _float(hs_enc), _float(hs_dec)
        if enc.ndim != 3 or dec.ndim != 3 or enc.shape[0] != dec.shape[0] or enc.shape[2] != dec.shape[2]:
            raise ValueError(
                f"TimeAttention.forward: hs_enc of shape {enc.shape} and hs_dec of shape {dec.shape} must "
                "be (N, T_enc, H) and (N, T_dec, H)"
            )
        out = np.empty(dec.shape, dtype=np.result_type(enc, dec))
        self.layers, self.attention_weights, self._enc = [], [], enc
        for t in range(dec.shape[1]):
            layer = Attention()
            out[:, t, :] = layer.forward(enc, dec[:, t, :])
            self.layers.append(layer)
            self.attention_weights.append(_weights_of(layer))
        return out

    def backward(self, dout: ArrayLike) -> tuple[Array, Array]:
        if self.layers is None or self._enc is None:
            raise not_ready("TimeAttention")
        enc, d = self._enc, np.asarray(dout)
        check_dout("TimeAttention", dout, (enc.shape[0], len(self.layers), enc.shape[2]))
        dtype = np.result_type(enc, d)
        dhs_enc = np.zeros(enc.shape, dtype=dtype)  # zeros, not the book's 0: T_dec = 0 keeps its shape
        dhs_dec = np.empty(d.shape, dtype=dtype)
        for t, layer in enumerate(self.layers):
            dhs, dh = layer.backward(d[:, t, :])
            dhs_enc += dhs
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec
