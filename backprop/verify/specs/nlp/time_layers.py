"""Rows for ``backprop.nlp.time_layers`` (TimeEmbedding, TimeAffine, TimeSoftmaxWithLoss,
TimeSigmoidWithLoss, TimeDropout) against ``reference.nlp.time_layers``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop import nlp
from backprop.verify.draw import Without
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes
from backprop.verify.specs.nlp.layers import EXTREME_LOGITS, far_apart, logits
from backprop.verify.specs.normalization import check_keep_rate
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (2, 5, 4)  # 5.4: the Time layers of the RNNLM (Embedding, Affine, Softmax with Loss), 6.4 dropout

_REF = "reference.nlp.time_layers"


def _integers(shape: tuple[int, ...], low: int, high: int) -> st.SearchStrategy[Any]:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

    return hnp.arrays(np.int64, shape, elements=st.integers(low, high))


# ==== TimeEmbedding =======================================================================================


def _embedding(v: int, d: int, n: int, t: int) -> ShapeDict:
    return {"W": (v, d), "xs": (n, t), "out": (n, t, d)}


TIME_EMBEDDING_POOL: tuple[ShapeDict, ...] = (
    _embedding(1, 1, 1, 1),  # one word, one step: where shrinking ends
    _embedding(2, 3, 1, 4),  # a batch of one, four steps over two words: repeats certain
    _embedding(3, 2, 2, 3),
    _embedding(2, 1, 3, 2),  # D = 1
    _embedding(4, 3, 2, 1),  # T = 1
    _embedding(3, 3, 1, 1),  # N = T = 1: most rows of dW stay 0
    _embedding(10, 2, 2, 2),  # more words than ids: most rows of dW stay 0
    _embedding(3, 2, 12, 5),  # a large batch: every word repeated many times
    _embedding(5, 32, 2, 3),  # a large D
    _embedding(4, 2, 2, 32),  # a long sequence
)
"""W (V, D) and xs (N, T) ids: vocabularies of 1 to 5 words (and one of 10), so that an id is usually
repeated and a layer that overwrites dW[id] instead of accumulating fails on most draws; T = 1 and N = 1."""


def word_ids(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Ids in [0, V) for W (V, D)."""
    return _integers(shapes["xs"], 0, shapes["W"][0] - 1)


TIME_EMBEDDING = Row(
    name="time_embedding",
    layer=nlp.TimeEmbedding,
    reference=lazy(_REF, "time_embedding"),
    graph=lazy(_REF, "time_embedding_graph"),
    signature="TimeEmbedding(W[V,D]).forward(xs[N,T] ids) -> [N,T,D]   (backward -> None; grads[0] = dW)",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
        Arg(name="xs", values=word_ids, batch=True),
    ),
    shapes=TIME_EMBEDDING_POOL,
    features=(Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
    conventions=("dW[v] sums dout over every position whose id is v (repeated ids accumulate)",),
)

# ==== TimeAffine ==========================================================================================


def _affine(n: int, t: int, d: int, m: int) -> ShapeDict:
    return {"W": (d, m), "b": (m,), "x": (n, t, d), "out": (n, t, m)}


TIME_AFFINE_POOL: tuple[ShapeDict, ...] = (
    _affine(1, 1, 1, 1),
    _affine(1, 3, 2, 4),  # a batch of one
    _affine(2, 1, 3, 2),  # T = 1
    _affine(2, 3, 4, 3),  # nothing square
    _affine(3, 2, 2, 2),  # W square
    _affine(2, 4, 1, 3),  # D = 1
    _affine(3, 3, 3, 1),  # M = 1
    _affine(12, 3, 2, 3),  # a large batch
    _affine(2, 32, 3, 2),  # a long sequence
    _affine(2, 2, 32, 32),  # large axes
)
"""x (N, T, D), W (D, M), b (M,): N = 1 and T = 1, D = 1 and M = 1, square and not, and large sizes."""

TIME_AFFINE = Row(
    name="time_affine",
    layer=nlp.TimeAffine,
    reference=lazy(_REF, "time_affine"),
    graph=lazy(_REF, "time_affine_graph"),
    signature="TimeAffine(W[D,M], b[M]).forward(x[N,T,D]) -> [N,T,M]   (backward -> dx; grads = [dW, db])",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
        Arg(name="b", to="init", grad="db", domain=(-1e3, 1e3)),
        Arg(name="x", grad="dx", domain=(-1e3, 1e3), batch=True),
    ),
    shapes=TIME_AFFINE_POOL,
    features=(Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
)

# ==== TimeSoftmaxWithLoss =================================================================================


def _scores(n: int, t: int, v: int, one_hot: bool) -> ShapeDict:
    return {"xs": (n, t, v), "ts": (n, t, v) if one_hot else (n, t), "loss": ()}


TIME_SOFTMAX_LOSS_POOL: tuple[ShapeDict, ...] = (
    _scores(1, 1, 2, False),
    _scores(1, 3, 2, False),  # a batch of one
    _scores(2, 1, 3, False),  # T = 1
    _scores(2, 3, 4, False),
    _scores(3, 2, 3, True),
    _scores(1, 1, 3, True),
    _scores(2, 4, 2, True),
    _scores(3, 3, 5, False),
    _scores(12, 3, 4, False),  # a large batch
    _scores(2, 3, 32, True),  # a large vocabulary
)
"""xs (N, T, V) scores with V >= 2; ts (N, T) labels (with -1, ignored) or (N, T, V) one-hot."""


def time_labels(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Labels in [-1, V), -1 (ignored) about once in V + 1, at least one label kept (the book's mean over
    the kept labels is 0 / 0 when none is; the library returns 0 there, which its unit tests check); or
    one-hot targets in the run's dtype, which the book reads by their argmax and so never ignore."""
    n, t, v = shapes["xs"]
    if shapes["ts"] == (n, t, v):
        return _integers((n, t), 0, v - 1).map(lambda ts: np.eye(v, dtype=dtype)[ts])
    return _integers((n, t), 0 if Feature.IGNORED in without else -1, v - 1).map(_keep_one)


def _keep_one(ts: Any) -> Any:
    if np.all(ts == -1):
        ts = ts.copy()
        ts.flat[0] = 0
    return ts


_far_apart = far_apart("xs")


def _target_form(values: Mapping[str, Any]) -> set[Feature]:
    """One-hot or integer targets, and ``extreme`` when one step's scores are far apart (``LOGIT_GAP``)."""
    ignored = {Feature.IGNORED} if np.ndim(values["ts"]) == 2 and np.any(values["ts"] == -1) else set()
    return {Feature.ONE_HOT if np.ndim(values["ts"]) == 3 else Feature.LABELS} | _far_apart(values) | ignored


def _kept(values: Mapping[str, Any]) -> Any:
    ts = np.asarray(values["ts"])
    return np.ones(ts.shape[:2], dtype=bool) if ts.ndim == 3 else ts != -1


def time_softmax_condition(values: Mapping[str, Any]) -> dict[str, Any]:
    """log-sum-exp of one time step's scores loses eps * max|xs[n, t]| to cancellation however it is
    written: per step, so one extreme step cannot widen another's tolerance; the loss carries the mean
    over the kept labels."""
    xs = np.asarray(values["xs"], dtype=np.float64)
    kappa = np.maximum(1.0, np.max(np.abs(xs), axis=-1, keepdims=True, initial=0.0))
    kept = _kept(values)
    return {"xs": kappa, "loss": float(np.sum(kappa[..., 0] * kept) / max(int(kept.sum()), 1))}


def _softmax_magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    """dxs = dout (softmax - onehot) / K subtracts terms of size |dout| / K at each kept step (the
    reference on absolute values cancels them too)."""
    kept = _kept(values)
    scale = float(np.abs(np.asarray(cotangents[0], dtype=np.float64))) / max(int(kept.sum()), 1)
    return {"xs": (kept * scale)[..., None]}


TIME_SOFTMAX_WITH_LOSS = Row(
    name="time_softmax_with_loss",
    layer=nlp.TimeSoftmaxWithLoss,
    reference=lazy(_REF, "time_softmax_with_loss"),
    graph=lazy(_REF, "time_softmax_with_loss_graph"),
    signature=(
        "TimeSoftmaxWithLoss().forward(xs[N,T,V], ts[N,T] labels, -1 ignored | ts[N,T,V] one-hot) -> mean "
        "cross entropy over the kept labels   (backward(dout=1) -> dxs)"
    ),
    args=(
        Arg(name="xs", grad="dxs", domain=(-1e4, 1e4), values=logits("xs"), batch=True),
        Arg(name="ts", values=time_labels, batch=True),
    ),
    shapes=TIME_SOFTMAX_LOSS_POOL,
    outputs=("loss",),
    loss=True,
    features=(
        Feature.LABELS,
        Feature.ONE_HOT,
        Feature.BATCH,
        Feature.LARGE,
        Feature.EXTREME,
        Feature.NEGATIVE_ZERO,
        Feature.IGNORED,
    ),
    row_features=_target_form,
    feature_words=EXTREME_LOGITS,
    conventions=(
        "label -1 is ignored: no loss, a zero gradient, and the mean is over the labels that are kept",
        "one-hot targets are read by their argmax, as in the book (a one-hot target is never ignored)",
        "every example keeps at least one label (the book divides 0 by 0 otherwise; the library returns 0)",
    ),
    condition=time_softmax_condition,
    magnitude=_softmax_magnitude,
    epsilon=lazy(_REF, "time_softmax_with_loss_epsilon"),
)

# ==== TimeSigmoidWithLoss =================================================================================


def _binary(n: int, t: int) -> ShapeDict:
    return {"xs": (n, t), "ts": (n, t), "loss": ()}


TIME_SIGMOID_LOSS_POOL: tuple[ShapeDict, ...] = tuple(
    _binary(n, t) for n, t in ((1, 1), (1, 3), (2, 1), (2, 3), (3, 2), (4, 4), (3, 5), (12, 3), (2, 32))
)
"""xs and ts (N, T): N = 1 and T = 1, and a large batch and a long sequence."""


def binary_targets(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    return _integers(shapes["ts"], 0, 1)


def _sigmoid_condition(values: Mapping[str, Any]) -> dict[str, Any]:
    """softplus(x) - t x, a common way to write the loss, cancels to eps * |x| (the stable forms do
    not): the loss carries the mean of max(1, |x|)."""
    xs = np.abs(np.asarray(values["xs"], dtype=np.float64))
    return {"loss": float(np.mean(np.maximum(1.0, xs)))}


def _sigmoid_magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    """dxs = dout (sigmoid(xs) - ts) / (N T) subtracts terms of size |dout| / (N T)."""
    xs = np.asarray(values["xs"])
    scale = float(np.abs(np.asarray(cotangents[0], dtype=np.float64))) / max(xs.size, 1)
    return {"xs": np.full(xs.shape, scale)}


TIME_SIGMOID_WITH_LOSS = Row(
    name="time_sigmoid_with_loss",
    layer=nlp.TimeSigmoidWithLoss,
    reference=lazy(_REF, "time_sigmoid_with_loss"),
    graph=lazy(_REF, "time_sigmoid_with_loss_graph"),
    signature=(
        "TimeSigmoidWithLoss().forward(xs[N,T], ts[N,T] of 0 and 1) -> mean binary cross entropy   "
        "(backward(dout=1) -> dxs)"
    ),
    args=(
        Arg(name="xs", grad="dxs", domain=(-1e4, 1e4), batch=True),
        Arg(name="ts", values=binary_targets, batch=True),
    ),
    shapes=TIME_SIGMOID_LOSS_POOL,
    outputs=("loss",),
    loss=True,
    features=(Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
    conventions=("the mean is over all N * T elements",),
    condition=_sigmoid_condition,
    magnitude=_sigmoid_magnitude,
    epsilon=lazy(_REF, "time_sigmoid_with_loss_epsilon"),
)

# ==== TimeDropout =========================================================================================

DROPOUT_RATIOS = (0.5, 0.2, 0.75)
"""Plain Python floats (a NumPy scalar would promote a float32 xs), each compiled into the reference; the
scales 1 / (1 - ratio) (2, 1.25, 4) are exact in float32."""


def _ratios(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[float]:
    from hypothesis import strategies as st

    return st.sampled_from(DROPOUT_RATIOS)


def time_dropout_mask(layer: Any) -> dict[str, Any]:
    """Which elements the layer kept in its last forward, as 0.0 / 1.0 for the reference.

    Read from ``layer.mask`` (the book's name), whatever it holds: the book's scaled float mask (0 or
    1 / (1 - ratio)), a boolean or a 0/1 mask; an element is kept where the mask is not 0. A layer that
    keeps no ``mask`` but exactly one boolean array is read from that. Raises ``LookupError`` naming the
    layer's attributes when there is none: the oracle reports it as the layer's failure.
    """
    attrs = getattr(layer, "__dict__", {})
    mask = getattr(layer, "mask", None)
    if mask is None:
        flags = [v for v in attrs.values() if isinstance(v, np.ndarray) and v.dtype == np.bool_]
        if len(flags) != 1:
            held = ", ".join(sorted(attrs)) or "none"
            raise LookupError(
                f"{type(layer).__name__} holds no dropout mask after forward(xs) with train_flg = True: the "
                f"row reads self.mask (scaled, boolean or 0/1), or the layer's only boolean array "
                f"(attributes: {held})"
            )
        mask = flags[0]
    kept = (np.asarray(mask) != 0).astype(np.float64)
    check_keep_rate(layer, kept)
    return {"mask": kept}


TIME_DROPOUT_POOL: tuple[ShapeDict, ...] = tuple(
    {"xs": s, "out": s}
    for s in (
        (1, 1, 8),
        (1, 8, 1),
        (2, 2, 2),
        (2, 4, 3),
        (3, 2, 4),
        (1, 4, 2),
        (4, 2, 8),
        (12, 2, 2),
        (2, 3, 32),
    )
)
"""xs (N, T, H) of at least 8 elements, as for book 1's dropout (a layer that ignores its mask is then
wrong on nearly every draw); N = 1 and T = 1, a large batch and a large H."""

TIME_DROPOUT = Row(
    name="time_dropout",
    layer=nlp.TimeDropout,
    reference=lazy(_REF, "time_dropout"),
    signature=(
        "TimeDropout(dropout_ratio).forward(xs) -> xs * mask / (1 - ratio), train_flg = True   "
        "(backward -> dxs)"
    ),
    args=(
        Arg(name="dropout_ratio", to="init", values=_ratios),
        Arg(name="xs", grad="dxs", domain=(-1e4, 1e4), batch=True),
    ),
    shapes=TIME_DROPOUT_POOL,
    # never 0, as for book 1's dropout: a zero dout where the mask drops would hide a backward without it
    cotangent_domain=(0.5, 10.0),
    features=(Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
    conventions=(
        "inverted dropout: the kept elements are scaled by 1 / (1 - ratio) in train mode",
        "checked in train mode (train_flg = True, the attribute's default); test mode is the identity",
    ),
    capture=time_dropout_mask,
)

ROWS = (TIME_EMBEDDING, TIME_AFFINE, TIME_SOFTMAX_WITH_LOSS, TIME_SIGMOID_WITH_LOSS, TIME_DROPOUT)
