"""Rows for ``backprop.nlp.layers`` (MatMul, Softmax, SigmoidWithLoss, Embedding) against
``reference.nlp.layers``.

Book 2's Affine, Sigmoid, SoftmaxWithLoss and Dropout compute what book 1's rows of the same names check
(``affine`` without N-D input, since book 2's Affine does not flatten): they have no rows of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop.nlp import layers
from backprop.verify.draw import EXTREME, Without, float_arrays, float_elements
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes, ValuesFn
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (2, 1, 3)  # 1.3: the layer classes of common/layers.py (Embedding: 4.1, SigmoidWithLoss: 4.2)

INT_BITS = "int_bits"
"""The width of an entry's integer indices or labels, (32,) or (64,): the book's negative samples and
labels are int32, NumPy's default int64. Fixed per entry, since each dtype compiles its own reference."""

_FEATURES = (Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO)


def word_ids(name: str) -> Any:
    """Draws ``name`` (an integer array of its pool shape) in [0, V), V = W's rows, in the entry's width.

    Hypothesis shrinks towards word 0, so examples repeat words often, the more so as the vocabularies of
    the pools are small next to the batches: an embedding that overwrites a repeated word's gradient
    instead of adding fails within a few examples."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

        vocab = shapes["W"][0]
        width = np.int32 if shapes[INT_BITS] == (32,) else np.int64
        return hnp.arrays(width, shapes[name], elements=st.integers(0, vocab - 1))

    return values


# ==== logits far apart: book 2's meaning of ``extreme`` for its softmax rows ===============================

LOGIT_GAP = 80.0
"""Logits of one row (one time step) this far apart are ``extreme`` in book 2's softmax rows, as values of
1e3 and more are everywhere: a probability exp(-80) is still a normal float32 (exp(-87.3) is the smallest),
but past that it loses digits and reaches 0 (past 745 in float64), and the book's TimeSoftmaxWithLoss takes
``np.log`` of it with no epsilon. Its verdict is then "right without extreme logits", and it passes with
``--without extreme``, which draws logits less than 80 apart around an offset of up to +-920 (a softmax
that does not subtract the max still overflows there)."""

EXTREME_LOGITS: Mapping[Feature, tuple[str, str]] = {
    Feature.EXTREME: (
        f"logits less than {LOGIT_GAP:g} apart (and |v| < 1e3)",
        f"the logits of one row (one time step) are {LOGIT_GAP:g} or more apart (or reach 1e3)",
    )
}
"""The scope sentence's words for ``extreme`` in those rows (``Row.feature_words``)."""


def far_apart(name: str) -> Callable[[Mapping[str, Any]], set[Feature]]:
    """``extreme`` when the float argument ``name`` has a row (its last axis) spanning ``LOGIT_GAP`` or more."""

    def features(values: Mapping[str, Any]) -> set[Feature]:
        x = np.asarray(values[name], dtype=np.float64)
        if x.size and np.max(np.ptp(x, axis=-1)) >= LOGIT_GAP:
            return {Feature.EXTREME}
        return set()

    return features


def logits(name: str) -> ValuesFn:
    """Draws the float argument ``name`` of its pool shape: in ``low, high`` (the row's domain) as any float
    argument, or, without ``extreme``, less than ``LOGIT_GAP`` apart around one offset, all below 1e3."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        shape = shapes[name]
        if Feature.EXTREME not in without:
            return float_arrays(shape, -1e4, 1e4, dtype, without)
        half = LOGIT_GAP / 2 - 1.0  # an ulp of rounding in the offset's sum stays inside the gap
        offsets = float_elements(-(EXTREME - LOGIT_GAP), EXTREME - LOGIT_GAP, dtype, without)

        def shifted(drawn: tuple[Any, float]) -> Any:
            x, offset = drawn
            return x if offset == 0 else (x + offset).astype(dtype)  # 0: keeps a -0.0

        return st.tuples(float_arrays(shape, -half, half, dtype, without), offsets).map(shifted)

    return values


# ==== MatMul ==============================================================================================


def _matmul(n: int, d: int, h: int) -> ShapeDict:
    return {"x": (n, d), "W": (d, h), "out": (n, h)}


MATMUL_POOL: tuple[ShapeDict, ...] = (
    _matmul(1, 1, 1),  # the smallest
    _matmul(1, 2, 3),  # a batch of one
    _matmul(2, 3, 4),  # nothing square
    _matmul(3, 2, 2),  # W square, N differs
    _matmul(2, 1, 3),  # D = 1
    _matmul(4, 3, 1),  # H = 1
    _matmul(3, 3, 3),  # all square: hides a transpose, as real layers can be
    _matmul(5, 4, 2),
    _matmul(32, 5, 3),  # a large batch
    _matmul(2, 64, 32),  # large axes
)
"""x (N, D), W (D, H): 1 x 1 x 1, a batch of one, D = 1, H = 1, square and non-square, a large batch and
large axes."""

MATMUL = Row(
    name="matmul",
    layer=layers.MatMul,
    reference=lazy("reference.nlp.layers", "matmul"),
    signature="MatMul(W[D,H]).forward(x[N,D]) -> [N,H]   (backward -> dx; grads[0] = dW)",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
        Arg(name="x", grad="dx", domain=(-1e3, 1e3), batch=True),
    ),
    shapes=MATMUL_POOL,
    features=_FEATURES,
)

# ==== Softmax =============================================================================================

SOFTMAX_POOL: tuple[ShapeDict, ...] = tuple(
    {"x": s, "out": s}
    for s in ((1, 1), (1, 2), (2, 3), (3, 2), (2, 2), (4, 5), (1, 4), (5, 1), (32, 5), (3, 64))
)
"""x (N, C), the book's softmax of each row: one class (out = 1, dx = 0), a batch of one, square and not,
a large batch and many classes."""


def _softmax_terms(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    """dx = y * (dout - sum(y * dout)) subtracts two terms of up to y * (|dout| + sum(y |dout|)), which can
    cancel to nearly 0; the reference on absolute values subtracts too, and bounds nothing."""
    x = np.asarray(values["x"], dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    dout = np.abs(np.asarray(cotangents[0], dtype=np.float64))
    return {"x": y * (dout + np.sum(y * dout, axis=-1, keepdims=True))}


SOFTMAX = Row(
    name="softmax",
    layer=layers.Softmax,
    reference=lazy("reference.nlp.layers", "softmax"),
    graph=lazy("reference.nlp.layers", "softmax_graph"),
    signature="Softmax().forward(x[N,C]) -> softmax of each row   (backward -> dx)",
    # logits up to 1e4 apart: a softmax without the max subtracted overflows, and most rows are one-hot
    args=(Arg(name="x", grad="dx", domain=(-1e4, 1e4), values=logits("x"), batch=True),),
    shapes=SOFTMAX_POOL,
    features=_FEATURES,
    row_features=far_apart("x"),
    feature_words=EXTREME_LOGITS,
    magnitude=_softmax_terms,
)

# ==== SigmoidWithLoss =====================================================================================


def _scores(n: int, bits: int) -> ShapeDict:
    return {"x": (n,), "t": (n,), "loss": (), INT_BITS: (bits,)}


SIGMOID_LOSS_POOL: tuple[ShapeDict, ...] = (
    _scores(1, 32),
    _scores(1, 64),
    _scores(2, 64),
    _scores(3, 32),
    _scores(4, 32),
    _scores(5, 64),
    _scores(8, 64),
    _scores(7, 32),
    _scores(32, 32),  # a large batch
    _scores(64, 64),
)
"""x (N,) scores and t (N,) labels: int32 (the book's ``np.ones(N, dtype=np.int32)``) or int64. Never 0.0 /
1.0 floats (``INT_BITS`` 0, which ``binary_labels`` can draw): the book's SigmoidWithLoss indexes its
probabilities with t, and would raise IndexError on labels it is never given."""


def binary_labels(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """Labels 0 and 1, as integers of the entry's width or as floats in the run's dtype."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    bits = shapes[INT_BITS][0]
    kind = {32: np.int32, 64: np.int64}.get(bits, dtype)
    return hnp.arrays(kind, shapes["t"], elements=st.integers(0, 1))


def _absolute_scores(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
    """softplus(x) - t x cancels to about eps * |x| in any form but the one that drops the two linear terms
    (max(x, 0) - t x + log1p(exp(-|x|))): the loss is known to eps * mean|x|."""
    return {"loss": float(np.mean(np.abs(np.asarray(values["x"], dtype=np.float64))))}


SIGMOID_WITH_LOSS = Row(
    name="sigmoid_with_loss",
    layer=layers.SigmoidWithLoss,
    reference=lazy("reference.nlp.layers", "sigmoid_with_loss"),
    graph=lazy("reference.nlp.layers", "sigmoid_with_loss_graph"),
    signature="SigmoidWithLoss().forward(x[N], t[N] int labels 0/1) -> mean binary cross entropy   (backward(dout=1) -> dx)",
    args=(
        Arg(name="x", grad="dx", domain=(-1e4, 1e4), batch=True),
        Arg(name="t", values=binary_labels, batch=True),
    ),
    shapes=SIGMOID_LOSS_POOL,
    outputs=("loss",),
    loss=True,
    features=_FEATURES,
    conventions=(
        "the loss is exact for any score (no -log(y + 1e-7)); the book's form passes with --allow epsilon",
    ),
    magnitude=_absolute_scores,
    epsilon=lazy("reference.nlp.layers", "sigmoid_with_loss_epsilon"),
)

# ==== Embedding ===========================================================================================


def _embedding(vocab: int, d: int, idx: tuple[int, ...], bits: int = 64) -> ShapeDict:
    return {"W": (vocab, d), "idx": idx, "out": (*idx, d), INT_BITS: (bits,)}


EMBEDDING_POOL: tuple[ShapeDict, ...] = (
    _embedding(1, 1, (1,)),  # the smallest
    _embedding(1, 2, (3,), 32),  # one word: every index repeats
    _embedding(2, 3, (4,)),
    _embedding(3, 2, (5,), 32),
    _embedding(5, 1, (8,)),
    _embedding(3, 3, (3,), 32),  # square
    _embedding(4, 2, (2, 3)),  # a batch of contexts, as CBOW's (N, C)
    _embedding(2, 4, (3, 2), 32),
    _embedding(10, 3, (32,)),  # a large batch
    _embedding(6, 32, (4,), 32),  # a large dimension
    _embedding(40, 2, (6,)),  # a large vocabulary: repeats are rare
)
"""W (V, D) and integer idx (N,) or (N, C), out idx.shape + (D,): vocabularies smaller than the batch in
most entries, so that words repeat."""

EMBEDDING = Row(
    name="embedding",
    layer=layers.Embedding,
    reference=lazy("reference.nlp.layers", "embedding"),
    graph=lazy("reference.nlp.layers", "embedding_graph"),
    signature="Embedding(W[V,D]).forward(idx[N] | idx[N,C] of ints in [0, V)) -> W[idx]   (backward -> None; grads[0] = dW)",
    args=(
        Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
        Arg(name="idx", values=word_ids("idx"), batch=True),
    ),
    shapes=EMBEDDING_POOL,
    features=_FEATURES,
)

ROWS = (MATMUL, SOFTMAX, SIGMOID_WITH_LOSS, EMBEDDING)
