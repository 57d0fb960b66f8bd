"""Rows for ``backprop.losses`` (SoftmaxWithLoss) against ``reference.losses``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import backprop
from backprop.verify.draw import Without
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st


def _logits(n: int, c: int, one_hot: bool) -> ShapeDict:
    return {"x": (n, c), "t": (n, c) if one_hot else (n,), "loss": ()}


SOFTMAX_LOSS_POOL: tuple[ShapeDict, ...] = (
    _logits(1, 2, False),
    _logits(2, 3, False),
    _logits(3, 2, True),
    _logits(1, 3, True),
    _logits(4, 5, False),
    _logits(2, 4, True),
    _logits(3, 3, False),
    _logits(4, 3, True),
    _logits(32, 5, False),  # a large batch
    _logits(2, 64, True),  # many classes
)
"""x (N, C) logits with C >= 2; t (N,) integer labels or (N, C) one-hot, five shapes of each, a batch of
one and a large size among them."""


def labels(
    shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype[Any], without: Without
) -> st.SearchStrategy[Any]:
    """Integer labels in [0, C), or the same labels one-hot encoded in the run's dtype."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp  # 0.3 s to import: not needed by --list

    n, c = shapes["x"]
    drawn = hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1))
    if shapes["t"] == (n,):
        return drawn
    return drawn.map(lambda t: np.eye(c, dtype=dtype)[t])


def _target_form(values: Mapping[str, Any]) -> set[Feature]:
    return {Feature.ONE_HOT if np.ndim(values["t"]) == 2 else Feature.LABELS}


def log_sum_exp_condition(values: Mapping[str, Any]) -> dict[str, Any]:
    """log-sum-exp of a row of logits loses eps * max|x_row| to cancellation, however it is written: per
    sample, so one extreme row cannot widen another row's tolerance. The loss, a mean over rows, carries
    the mean of the rows' conditions."""
    x = np.asarray(values["x"], dtype=np.float64)
    kappa = np.maximum(1.0, np.max(np.abs(x), axis=-1, keepdims=True, initial=0.0))
    return {"x": kappa, "loss": float(np.mean(kappa))}


SECTION = (1, 5, 6, 3)  # 5.6.3: SoftmaxWithLoss

ROWS = (
    Row(
        name="softmax_with_loss",
        layer=backprop.SoftmaxWithLoss,
        reference=lazy("reference.losses", "softmax_with_loss"),
        graph=lazy("reference.losses", "softmax_with_loss_graph"),
        signature="forward(x[N,C], t[N] labels | t[N,C] one-hot) -> mean cross entropy   (backward(dout=1) -> dx)",
        args=(
            Arg(name="x", grad="dx", domain=(-1e4, 1e4), batch=True),
            Arg(name="t", values=labels, batch=True),
        ),
        shapes=SOFTMAX_LOSS_POOL,
        outputs=("loss",),
        loss=True,
        features=(
            Feature.LABELS,
            Feature.ONE_HOT,
            Feature.BATCH,
            Feature.LARGE,
            Feature.EXTREME,
            Feature.NEGATIVE_ZERO,
        ),
        row_features=_target_form,
        condition=log_sum_exp_condition,
        epsilon=lazy("reference.losses", "softmax_with_loss_epsilon"),
    ),
)
