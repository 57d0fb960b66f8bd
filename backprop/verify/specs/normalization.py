"""Rows for ``backprop.normalization`` (Dropout, BatchNormalization, ChannelBatchNormalization) against
``reference.normalization``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import backprop
from backprop.normalization import EPS
from backprop.verify.draw import Without, float_arrays
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes, ValuesFn
from backprop.verify.tolerances import TOLERANCES
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

SECTION = (1, 6, 3)  # 6.3 batch normalization, 6.4.3 dropout: after every chapter-5 row

# ==== Dropout =============================================================================================

DROPOUT_RATIOS = (0.5, 0.2, 0.75)
"""A few ratios, as plain Python floats (a NumPy scalar would promote a float32 x): each distinct value is
compiled into the reference, so a continuous draw would compile once per example."""


def _ratios(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[float]:
    from hypothesis import strategies as st

    return st.sampled_from(DROPOUT_RATIOS)


def _both_modes(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[bool]:
    from hypothesis import strategies as st

    return st.booleans()


def _is_binary(value: Any) -> bool:
    array = np.asarray(value)
    return array.dtype.kind in "biuf" and bool(np.all((array == 0) | (array == 1)))


def dropout_mask(layer: Any) -> dict[str, Any]:
    """The mask the layer drew in its last train-mode forward, as 0.0 / 1.0 floats for the reference.

    Read from ``layer.mask`` (the book's name; boolean or a 0/1 array of any numeric dtype), or else from
    the layer's only boolean array attribute. Raises ``LookupError`` naming the layer's attributes when
    there is none, and ``ValueError`` when it holds values other than 0 and 1 (an inverted dropout's scaled
    mask): the oracle reports either as the layer's failure whenever the reference needs the mask.
    """
    attrs = getattr(layer, "__dict__", {})
    name, mask = "mask", getattr(layer, "mask", None)
    if mask is None:
        flags = {
            k: v for k, v in attrs.items() if isinstance(v, np.ndarray | np.bool_) and v.dtype == np.bool_
        }
        if len(flags) != 1:
            held = ", ".join(sorted(attrs)) or "none"
            raise LookupError(
                f"{type(layer).__name__} holds no dropout mask after forward(x, train_flg=True): the row "
                f"reads self.mask (boolean or 0/1), or the layer's only boolean array (attributes: {held})"
            )
        name, mask = next(iter(flags.items()))
    if not _is_binary(mask):
        raise ValueError(
            f"{type(layer).__name__}.{name} holds values other than 0 and 1: the first book's Dropout keeps "
            "or drops each element (mask = rand > ratio) and never rescales the kept ones"
        )
    kept = np.asarray(mask, dtype=np.float64)
    check_keep_rate(layer, kept)
    return {"mask": kept}


KEEP_RATE_P = 1e-9
"""A mask whose count of kept elements is this unlikely under keep probability 1 - ratio (either tail) is
the layer's mistake: ``rand < ratio`` keeps the fraction ratio. A right layer is flagged about once in 10^9
examples; the fractions are told apart from about 24 elements at ratio 0.2 or 0.75."""


def binomial_tails(k: int, n: int, p: float) -> tuple[float, float]:
    """P(K <= k) and P(K >= k) for K ~ Binomial(n, p), 0 < p < 1, summed in log space (exact for any n)."""
    log_q, log_r = math.log(p), math.log1p(-p)
    top = math.lgamma(n + 1)
    pmf = [
        math.exp(top - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_q + (n - i) * log_r)
        for i in range(n + 1)
    ]
    return float(sum(pmf[: k + 1])), float(sum(pmf[k:]))


def check_keep_rate(layer: Any, kept: Any) -> None:
    """Raise ``ValueError`` when the layer's mask keeps a share of elements that keep probability
    1 - dropout_ratio makes all but impossible (the layer's ``dropout_ratio``, as in both books)."""
    ratio = getattr(layer, "dropout_ratio", None)
    n = int(np.size(kept))
    if not isinstance(ratio, int | float) or not 0.0 < ratio < 1.0 or n == 0:
        return
    k = int(np.count_nonzero(kept))
    low, high = binomial_tails(k, n, 1.0 - float(ratio))
    if min(low, high) < KEEP_RATE_P:
        raise ValueError(
            f"{type(layer).__name__} kept {k} of {n} elements with dropout_ratio = {ratio:g}, where about "
            f"{n * (1 - ratio):.0f} are expected: an element is kept with probability 1 - ratio "
            "(mask = rand > ratio)"
        )


DROPOUT_POOL: tuple[ShapeDict, ...] = tuple(
    {"x": s, "out": s}
    for s in ((8,), (1, 8), (8, 1), (2, 4), (4, 3), (2, 3, 4), (2, 1, 2, 2), (3, 2, 2, 2), (4, 32), (2, 64))
)
"""Like the elementwise pool, but every array holds at least 8 elements: a layer that ignores its mask is
then wrong on nearly every draw (all 8 kept has probability 0.5**8 at the ratio shrinking ends on), and
the training stage's control on a fresh instance (another random mask) tells it apart from a stale one.
On a scalar, a single kept element hides the mask, and whether a later draw shows it is luck."""

DROPOUT = Row(
    name="dropout",
    layer=backprop.Dropout,
    reference=lazy("reference.normalization", "dropout"),
    signature="Dropout(ratio).forward(x, train_flg) -> x * mask | x * (1 - ratio)   (backward -> dx)",
    args=(
        Arg(name="dropout_ratio", to="init", values=_ratios),
        Arg(name="x", grad="dx", domain=(-1e4, 1e4)),
        Arg(name="train_flg", to="forward", values=_both_modes),
    ),
    mode="train_flg",
    shapes=DROPOUT_POOL,
    # never 0: the shrinker would zero dout wherever the first mask drops an element, so that a backward
    # ignoring the mask is right on the first call and only a later call's fresh mask shows it (reported
    # as stale or stateful); dx = dout * mask is linear in dout, so positive douts lose nothing of it
    cotangent_domain=(0.5, 10.0),
    features=(Feature.RANK4, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
    conventions=(
        "non-inverted dropout: kept elements are not rescaled in train mode; test mode scales by 1 - ratio",
        "backward after a test-mode forward is its derivative, dout * (1 - ratio); a layer whose backward "
        "raises there (the book leaves it undefined) is judged on test-mode forward alone, with a note",
    ),
    capture=dropout_mask,
)

# ==== batch normalization =================================================================================


def _features(x: tuple[int, ...], stats: tuple[int, ...]) -> ShapeDict:
    return {"x": x, "gamma": stats, "beta": stats, "running_mean": stats, "running_var": stats, "out": x}


def _flat(*x: int) -> ShapeDict:
    return _features(x, (int(np.prod(x[1:])),))


def _channels(*x: int) -> ShapeDict:
    return _features(x, (x[1],))


BATCH_NORMALIZATION_POOL: tuple[ShapeDict, ...] = (
    _flat(1, 1),  # a batch of one: test mode only
    _flat(2, 1),  # the smallest batch train mode accepts
    _flat(2, 3),
    _flat(3, 2),
    _flat(4, 1),
    _flat(1, 3),  # a batch of one, several features: test mode only
    _flat(2, 1, 1, 1),  # rank 4, every feature axis of size 1
    _flat(2, 2, 1, 3),  # rank 4, D = C*H*W = 6 features
    _flat(3, 1, 2, 2),
    _flat(1, 2, 2, 1),  # rank 4, a batch of one
    _flat(32, 5),  # a large batch
    _flat(4, 64),  # many features
    _flat(2, 2, 4, 4),  # rank 4, D = 32
)
"""x (N, D) or (N, C, H, W) with gamma, beta and the running statistics (D,), D = C*H*W: batches of one
(test mode only), N = 2, size-1 axes, rank 4, and a large batch and many features."""

CHANNEL_BATCH_NORMALIZATION_POOL: tuple[ShapeDict, ...] = (
    _channels(1, 1, 1, 1),  # one value per channel: test mode only
    _channels(2, 1, 1, 1),  # the smallest train mode accepts
    _channels(1, 2, 2, 1),  # a batch of one, two values per channel: train mode accepts it
    _channels(2, 3, 1, 1),
    _channels(3, 2, 2, 1),
    _channels(2, 1, 2, 3),
    _channels(1, 3, 2, 2),
    _channels(4, 2, 1, 3),
    _channels(2, 2, 3, 3),
    _channels(12, 2, 2, 2),  # a large batch
    _channels(2, 32, 2, 1),  # many channels
    _channels(2, 2, 1, 32),  # a long axis
)
"""x (N, C, H, W) with gamma, beta and the running statistics (C,): one value per channel (test mode
only), a batch of one with a spatial extent, size-1 axes, and a large batch, many channels and a long
axis."""


Layout = Callable[[Any], Any]


def _modes(trainable: Callable[[tuple[int, ...]], bool]) -> ValuesFn:
    """train_flg True or False; only False where the batch cannot give statistics (the layer raises)."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[bool]:
        from hypothesis import strategies as st

        return st.booleans() if trainable(shapes["x"]) else st.just(False)

    return values


def _flat_trainable(x: tuple[int, ...]) -> bool:
    return x[0] >= 2


def _channel_trainable(x: tuple[int, ...]) -> bool:
    return x[0] * x[2] * x[3] >= 2


def _nd(values: Mapping[str, Any]) -> set[Feature]:
    return {Feature.ND} if np.ndim(values["x"]) > 2 else set()


X_DOMAIN = (-1e3, 1e3)
OFFSET_ONE_IN = 3
"""About one x in this many has one feature (a column of the flat layer, a channel of the per-channel
one) moved to a large mean next to its spread, which uniform draws all but never give: a float32 layer
that computes var = mean(x**2) - mean(x)**2 loses that feature's variance to cancellation. Before,
such a layer was first caught at the 352nd example; now at examples 3 to 43 on seeds 0 to 3, for both
rows (tests/catalogue/broken.py, BatchNormVarByMoments and ChannelBatchNormVarByMoments)."""
OFFSETS = (1e2, 1e3 - 1.0)
"""The feature's mean, of either sign: inside the domain once its spread is added."""
SPREADS = (1e-2, 1e-3, 1e-4)
"""The feature's spread relative to its mean: its values are mean * (1 + spread * u), u = x / 1e3 in
[-1, 1]. float32's var by moments is off by about eps * mean**2, relative to the variance eps / spread**2:
1e-2 is about where a right layer's tolerance (see ``_magnitudes``) stops covering it."""


def _offset(drawn: tuple[Any, int, int, float, float, Layout]) -> Any:
    x, k, at, mean, spread, feature = drawn
    if k != OFFSET_ONE_IN - 1 or x.size == 0:  # the last k: shrinking towards 0 drops the offset
        return x
    x = x.copy()
    column = feature(x)
    j = at % column.shape[-1]
    u = np.asarray(column[..., j], dtype=np.float64) / X_DOMAIN[1]
    column[..., j] = (mean * (1.0 + spread * u)).astype(x.dtype)
    return x


def _flat_features(x: Any) -> Any:
    """A writable (N, D) view of x."""
    return x.reshape(x.shape[0], -1)


def _channel_features(x: Any) -> Any:
    """A writable view of x with the channels last: (N, H, W, C)."""
    return np.moveaxis(x, 1, -1)


def _inputs(feature: Layout) -> ValuesFn:
    """x in X_DOMAIN, with a feature at a large mean next to its spread about one time in OFFSET_ONE_IN."""

    def values(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        return st.tuples(
            float_arrays(shapes["x"], *X_DOMAIN, dtype, without),
            st.integers(0, OFFSET_ONE_IN - 1),
            st.integers(0, 2**16),
            st.sampled_from((*OFFSETS, *(-m for m in OFFSETS))),
            st.sampled_from(SPREADS),
            st.just(feature),
        ).map(_offset)

    return values


def _normalization_args(trainable: Callable[[tuple[int, ...]], bool], feature: Layout) -> tuple[Arg, ...]:
    return (
        # positive, as a network's (initialized to ones): gamma = 0 makes out = beta and dx = 0 whatever
        # the layer does with xn, so a wrong normalization would show only in dgamma, and only if dout is
        # not shrunk to 0 first
        Arg(name="gamma", to="init", grad="dgamma", domain=(0.5, 10.0)),
        Arg(name="beta", to="init", grad="dbeta", domain=(-10.0, 10.0)),
        Arg(name="running_mean", to="init_kw", domain=(-1e3, 1e3)),
        Arg(name="running_var", to="init_kw", domain=(0.0625, 1e2)),  # a variance: positive, exact in float32
        Arg(name="x", grad="dx", domain=X_DOMAIN, values=_inputs(feature), batch=True),
        Arg(name="train_flg", to="forward", values=_modes(trainable)),
    )


def _flat_rows(x: Any) -> Any:
    return np.reshape(x, (np.shape(x)[0], -1))


def _flat_columns(v: Any, shape: tuple[int, ...]) -> Any:
    return np.reshape(v, (1, *shape[1:]))


def _channel_rows(x: Any) -> Any:
    return np.transpose(x, (0, 2, 3, 1)).reshape(-1, np.shape(x)[1])


def _channel_columns(v: Any, shape: tuple[int, ...]) -> Any:
    return np.reshape(v, (1, -1, 1, 1))


def _magnitudes(
    rows_of: Layout, columns: Callable[[Any, tuple[int, ...]], Any]
) -> Callable[[Mapping[str, Any], tuple[Any, ...]], dict[str, Any]]:
    """The rounding scale of a batch normalization, which its reference on absolute values cannot give: it
    divides by a statistic of its own input.

    Per feature (a column of R rows), with std = sqrt(var + EPS): x - mean loses eps * (max|x| + |mean|)
    to cancellation, which xn carries divided by std; so xn is known to ``spread`` = max|xn| +
    (max|x| + |mean|) / std in units of eps, out to |gamma| spread + |beta| and dgamma to sum|dout| spread.
    In train mode dx = gamma / std * (dout - mean(dout) - xn mean(dout xn)) sums terms of gamma / std *
    max|dout| * (2 + (max|xn| + eps spread) spread), which cancel to nearly 0 for N = 2 (every xn is +-1),
    and whose last term is all rounding on a channel constant but for it; in test mode
    dx = gamma * dout / std sums nothing. Each is allowed 4 (R + 1) eps of the run's dtype, expressed in
    the tolerance's rtol so that float64's wide rtol is not widened further."""

    def magnitude(values: Mapping[str, Any], cotangents: tuple[Any, ...]) -> dict[str, Any]:
        x = np.asarray(values["x"])
        rows = rows_of(x.astype(np.float64))
        dout = np.abs(rows_of(np.asarray(cotangents[0], dtype=np.float64)))
        gamma, beta = (np.abs(np.asarray(values[k], dtype=np.float64)) for k in ("gamma", "beta"))
        if values["train_flg"]:
            mean, var = rows.mean(axis=0), rows.var(axis=0)
        else:
            mean, var = (np.asarray(values[k], dtype=np.float64) for k in ("running_mean", "running_var"))
        std = np.sqrt(var + values.get("eps", EPS))  # the row's eps (``Row.at_eps`` may change it)
        eps = float(np.finfo(x.dtype).eps)
        xn = np.max(np.abs(rows - mean), axis=0, initial=0.0) / std
        spread = xn + (np.max(np.abs(rows), axis=0, initial=0.0) + np.abs(mean)) / std
        late = dout.max(axis=0, initial=0.0) * gamma / std
        # the computed xn is off by up to eps * spread, and dx multiplies it by sum(dout xn): on a channel
        # that is constant but for rounding (var 0, std = sqrt(EPS)) that square is all of xn, and float32's
        # eps * spread reaches 0.04 (a 1e-3 relative error of dx that no right layer avoids)
        dx = late * (2.0 + (xn + eps * spread) * spread) if values["train_flg"] else 2.0 * late
        tol = TOLERANCES[x.dtype.name]
        units = 4.0 * (rows.shape[0] + 1) * eps / tol.rtol
        return {
            "out": columns((gamma * spread + beta) * units, x.shape),
            "x": columns(dx * units, x.shape),  # by argument name: dx is x's gradient
            "gamma": dout.sum(axis=0) * spread * units,
        }

    return magnitude


def _running(rows_of: Layout) -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    """The running statistics a train-mode forward on ``values`` leaves, with the layer's own ``momentum``
    (the book's name; 0.9, the book's default, where it has none): momentum * running + (1 - momentum) *
    the batch's mean and biased variance, in the run's dtype."""

    def after_train(values: Mapping[str, Any], layer: Any) -> dict[str, Any]:
        try:
            momentum = float(getattr(layer, "momentum", 0.9))
        except (TypeError, ValueError):
            momentum = 0.9
        x = np.asarray(values["x"])
        rows = rows_of(x.astype(np.float64))
        batch = {"running_mean": rows.mean(axis=0), "running_var": rows.var(axis=0)}
        return {
            k: np.asarray(momentum * np.asarray(values[k], dtype=np.float64) + (1.0 - momentum) * v, x.dtype)
            for k, v in batch.items()
        }

    return after_train


_CONVENTIONS = (
    "eps = 10e-7 under the square root and the biased batch variance, as in the book",
    "test mode: the running statistics are constants (no gradient flows into them)",
    "train mode needs two values per normalized feature: the layer raises ValueError otherwise",
)

BATCH_NORMALIZATION = Row(
    name="batch_normalization",
    layer=backprop.BatchNormalization,
    reference=lazy("reference.normalization", "batch_normalization"),
    graph=lazy("reference.normalization", "batch_normalization_graph"),
    eps=EPS,  # the book's, under the square root; Row.at_eps checks a layer at its own
    signature=(
        "BatchNormalization(gamma[D], beta[D], running_mean=[D], running_var=[D]).forward(x[N,D] | "
        "x[N,C,H,W], D=C*H*W, train_flg) -> [x's shape]   (backward -> dx; .dgamma, .dbeta)"
    ),
    args=_normalization_args(_flat_trainable, _flat_features),
    shapes=BATCH_NORMALIZATION_POOL,
    features=(
        Feature.ND,
        Feature.BATCH,
        Feature.RANK4,
        Feature.LARGE,
        Feature.EXTREME,
        Feature.NEGATIVE_ZERO,
    ),
    row_features=_nd,
    conventions=_CONVENTIONS,
    magnitude=_magnitudes(_flat_rows, _flat_columns),
    mode="train_flg",
    after_train=_running(_flat_rows),
)

CHANNEL_BATCH_NORMALIZATION = Row(
    name="channel_batch_normalization",
    layer=backprop.ChannelBatchNormalization,
    reference=lazy("reference.normalization", "channel_batch_normalization"),
    graph=lazy("reference.normalization", "channel_batch_normalization_graph"),
    eps=EPS,  # the book's, under the square root; Row.at_eps checks a layer at its own
    signature=(
        "ChannelBatchNormalization(gamma[C], beta[C], running_mean=[C], running_var=[C])"
        ".forward(x[N,C,H,W], train_flg) -> [N,C,H,W]   (per channel over N, H, W; backward -> dx; .dgamma, .dbeta)"
    ),
    args=_normalization_args(_channel_trainable, _channel_features),
    shapes=CHANNEL_BATCH_NORMALIZATION_POOL,
    features=(Feature.BATCH, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO),
    conventions=_CONVENTIONS,
    magnitude=_magnitudes(_channel_rows, _channel_columns),
    mode="train_flg",
    after_train=_running(_channel_rows),
)

ROWS = (DROPOUT, BATCH_NORMALIZATION, CHANNEL_BATCH_NORMALIZATION)
