"""Rows for ``backprop.nlp.attention`` (WeightSum, AttentionWeight, Attention, TimeAttention) against
``reference.nlp.attention``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop import nlp
from backprop.verify.draw import Without, float_arrays
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes, ValuesFn
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (2, 8, 1)  # 8.1: attention

_REF = "reference.nlp.attention"

_STEPS: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),  # where shrinking ends
    (1, 3, 2),  # a batch of one
    (2, 1, 3),  # T = 1: the weights are all 1, the scores get no gradient
    (2, 3, 2),
    (3, 2, 4),
    (2, 4, 1),  # H = 1
    (1, 5, 3),
    (3, 3, 3),  # all square: hides a swapped axis, as real layers can be
    (12, 3, 2),  # a large batch
    (2, 32, 3),  # a long sequence
    (2, 3, 32),  # a large H
)
"""(N, T, H) of the encoder states hs: N = 1, T = 1, H = 1, square and not, and large sizes; each row's
pool adds (1, 3, 32) with ALIGNED states (a batch of one: the scope does not blame the batch)."""

_FEATURES = (Feature.BATCH, Feature.LARGE, Feature.NEGATIVE_ZERO)

SCORE_DOMAIN = (-4.0, 4.0)
"""The states scored by a dot product: moderate, so that the softmax does not saturate to one-hot weights
(whose gradient is 0, and hides any mistake behind it) on every draw."""

ALIGNED = "aligned"
"""A pool entry holding this key draws its scored states aligned and large: every element of an array
of one sign (drawn per array) and of magnitude ``ALIGNED_DOMAIN``, so that at H = 32 every score hs . h
is at least 32 * 5**2 = 800 in magnitude, past float64's exp limit (709): a softmax that does not
subtract the max overflows to inf / inf, or underflows to 0 / 0, and returns NaN (SCORE_DOMAIN's
4 * 4 * 32 = 512 never gets there). The scores of one sample are equal where the drawn states clip to 5,
and far apart elsewhere. A batch of one, so that the scope does not blame the batch. ALIGNED_COPIES
copies of the entry in each pool (of 11 or 12 others), as Hypothesis draws a pool's entries unevenly:
with one copy, 3 to 4 of 30 seeds never drew it in 100 examples; with three, none of 30 missed it in
100 examples and 1 of 90 row-seeds in 50 (measured on attention_weight, attention, time_attention)."""
ALIGNED_DOMAIN = (5.0, 8.0)
ALIGNED_COPIES = 3


def _signed(drawn: tuple[Any, float]) -> Any:
    array, sign = drawn
    return array * array.dtype.type(sign)


def _scored(name: str) -> ValuesFn:
    """The states ``name``: in SCORE_DOMAIN, or aligned and large on a pool entry marked ALIGNED."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        if ALIGNED not in shapes:
            return float_arrays(shapes[name], *SCORE_DOMAIN, dtype, without)
        large = float_arrays(shapes[name], *ALIGNED_DOMAIN, dtype, without)
        return st.tuples(large, st.sampled_from((1.0, -1.0))).map(_signed)

    return values


def _scored_args(first: str, first_grad: str, second: str, second_grad: str) -> tuple[Arg, ...]:
    return (
        Arg(name=first, grad=first_grad, domain=SCORE_DOMAIN, values=_scored(first), batch=True),
        Arg(name=second, grad=second_grad, domain=SCORE_DOMAIN, values=_scored(second), batch=True),
    )


# ---- rounding of the softmax over scores -----------------------------------------------------------------


def _abs(values: Mapping[str, Any], name: str) -> Any:
    return np.abs(np.asarray(values[name], dtype=np.float64))


def _softmax_floors(enc: Any, dec: Any, da: Any) -> dict[str, Any]:
    """The rounding scale of attention on |encoder states| (N, T, H), |decoder states| (N, U, H) and a
    bound on |da| (N, U, T), which the reference on absolute values cannot give: the softmax divides by a
    sum of its own exponentials and subtracts the weighted mean of da.

    A score s = hs . h is known to eps * S, S = sum |hs| |h|, so each weight a to eps * 2 max S relative;
    ds = a (da - sum a da) to eps * 2 (max S + T) max|da| =: E; then dhs (from the scores) sums E |h| over
    the decoder steps, dh sums E |hs| over the encoder steps, and the context c = sum a hs carries
    2 max S max|hs|."""
    scores = np.einsum("nth,nuh->nut", enc, dec)
    top = np.max(scores, axis=2, initial=0.0)  # (N, U)
    e = 2.0 * (top + enc.shape[1]) * np.max(da, axis=2, initial=0.0)  # (N, U)
    return {
        "a": np.broadcast_to(2.0 * top[..., None], scores.shape),
        "enc": np.broadcast_to(np.einsum("nu,nuh->nh", e, dec)[:, None, :], enc.shape),
        "dec": e[..., None] * enc.sum(axis=1)[:, None, :],
        "out": 2.0 * top[..., None] * np.max(enc, axis=1, initial=0.0)[:, None, :],
    }


def _attention_weight_magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    hs, h = _abs(values, "hs"), _abs(values, "h")[:, None, :]
    da = np.abs(np.asarray(cotangents[0], dtype=np.float64))[:, None, :]
    f = _softmax_floors(hs, h, da)
    return {"a": f["a"][:, 0], "hs": f["enc"], "h": f["dec"][:, 0]}


def _attention_magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    hs, h = _abs(values, "hs"), _abs(values, "h")[:, None, :]
    dout = np.abs(np.asarray(cotangents[0], dtype=np.float64))[:, None, :]
    f = _softmax_floors(hs, h, np.einsum("nuh,nth->nut", dout, hs))
    return {"out": f["out"][:, 0], "hs": f["enc"], "h": f["dec"][:, 0]}


def _time_attention_magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    enc, dec = _abs(values, "hs_enc"), _abs(values, "hs_dec")
    dout = np.abs(np.asarray(cotangents[0], dtype=np.float64))
    f = _softmax_floors(enc, dec, np.einsum("nuh,nth->nut", dout, enc))
    return {"out": f["out"], "hs_enc": f["enc"], "hs_dec": f["dec"]}


# ---- the rows --------------------------------------------------------------------------------------------

WEIGHT_SUM = Row(
    name="weight_sum",
    layer=nlp.WeightSum,
    reference=lazy(_REF, "weight_sum"),
    graph=lazy(_REF, "weight_sum_graph"),
    signature="WeightSum().forward(hs[N,T,H], a[N,T]) -> c[N,H] = sum_t a hs   (backward -> (dhs, da))",
    args=(
        Arg(name="hs", grad="dhs", domain=(-1e3, 1e3), batch=True),
        Arg(name="a", grad="da", domain=(-1e3, 1e3), batch=True),
    ),
    shapes=tuple({"hs": (n, t, h), "a": (n, t), "c": (n, h)} for n, t, h in _STEPS),
    outputs=("c",),
    features=(*_FEATURES, Feature.EXTREME),
    conventions=("a is any weight, not only a softmax's output",),
)

ATTENTION_WEIGHT = Row(
    name="attention_weight",
    layer=nlp.AttentionWeight,
    reference=lazy(_REF, "attention_weight"),
    graph=lazy(_REF, "attention_weight_graph"),
    signature=(
        "AttentionWeight().forward(hs[N,T,H], h[N,H]) -> a[N,T] = softmax_t(hs . h)   (backward -> (dhs, dh))"
    ),
    args=_scored_args("hs", "dhs", "h", "dh"),
    shapes=(
        *({"hs": (n, t, h), "h": (n, h), "a": (n, t)} for n, t, h in _STEPS),
        *({"hs": (1, 3, 32), "h": (1, 32), "a": (1, 3), ALIGNED: ()},) * ALIGNED_COPIES,
    ),
    outputs=("a",),
    features=_FEATURES,
    magnitude=_attention_weight_magnitude,
)

ATTENTION = Row(
    name="attention",
    layer=nlp.Attention,
    reference=lazy(_REF, "attention"),
    graph=lazy(_REF, "attention_graph"),
    signature=(
        "Attention().forward(hs[N,T,H], h[N,H]) -> [N,H] = WeightSum(hs, AttentionWeight(hs, h))   "
        "(backward -> (dhs, dh))"
    ),
    args=_scored_args("hs", "dhs", "h", "dh"),
    shapes=(
        *({"hs": (n, t, h), "h": (n, h), "out": (n, h)} for n, t, h in _STEPS),
        *({"hs": (1, 3, 32), "h": (1, 32), "out": (1, 32), ALIGNED: ()},) * ALIGNED_COPIES,
    ),
    features=_FEATURES,
    conventions=("hs's gradient is the sum of both paths: through the weights and through the sum",),
    magnitude=_attention_magnitude,
)


def _time_steps(n: int, t_enc: int, t_dec: int, h: int) -> ShapeDict:
    return {"hs_enc": (n, t_enc, h), "hs_dec": (n, t_dec, h), "out": (n, t_dec, h)}


TIME_ATTENTION_POOL: tuple[ShapeDict, ...] = (
    _time_steps(1, 1, 1, 1),
    _time_steps(1, 3, 2, 2),  # a batch of one
    _time_steps(2, 1, 3, 2),  # one encoder step
    _time_steps(2, 3, 1, 3),  # one decoder step
    _time_steps(2, 4, 3, 1),  # H = 1
    _time_steps(3, 2, 2, 4),  # T_enc = T_dec
    _time_steps(1, 5, 4, 3),
    _time_steps(3, 3, 3, 3),  # all square
    _time_steps(12, 3, 2, 2),  # a large batch
    _time_steps(2, 32, 3, 2),  # a long source
    _time_steps(2, 3, 32, 2),  # a long target
    _time_steps(2, 3, 2, 32),  # a large H
    *({**_time_steps(1, 3, 2, 32), ALIGNED: ()},) * ALIGNED_COPIES,
)
"""hs_enc (N, T_enc, H) and hs_dec (N, T_dec, H): each of N, T_enc, T_dec and H of 1, and each large; the
last entry with ALIGNED states."""

TIME_ATTENTION = Row(
    name="time_attention",
    layer=nlp.TimeAttention,
    reference=lazy(_REF, "time_attention"),
    graph=lazy(_REF, "time_attention_graph"),
    signature=(
        "TimeAttention().forward(hs_enc[N,Te,H], hs_dec[N,Td,H]) -> [N,Td,H], Attention(hs_enc, hs_dec[:, t]) "
        "at each t   (backward -> (dhs_enc, dhs_dec))"
    ),
    args=_scored_args("hs_enc", "dhs_enc", "hs_dec", "dhs_dec"),
    shapes=TIME_ATTENTION_POOL,
    features=_FEATURES,
    conventions=("dhs_enc sums the gradients of every decoder step",),
    magnitude=_time_attention_magnitude,
)

ROWS = (WEIGHT_SUM, ATTENTION_WEIGHT, ATTENTION, TIME_ATTENTION)
