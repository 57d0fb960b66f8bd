"""Rows for ``backprop.losses`` (SoftmaxWithLoss) against ``reference.losses``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backprop
import reference
from backprop.verify.draw import Without, axis_size, batch_size
from backprop.verify.row import Arg, Row
from backprop.verify.specs._shapes import ShapeDict
from backprop.verify.vocabulary import Feature


@st.composite
def softmax_loss_shapes(draw: st.DrawFn, without: Without) -> ShapeDict:
    """x (N, C) logits with C >= 2; t (N,) labels or (N, C) one-hot, as ``without`` allows."""
    n, c = draw(batch_size(without)), draw(axis_size(without, 2, 5))
    forms = [f for f in (Feature.LABELS, Feature.ONE_HOT) if f not in without]
    if not forms:
        raise ValueError("softmax_with_loss needs labels or one-hot targets: do not turn off both")
    one_hot = draw(st.sampled_from(forms)) == Feature.ONE_HOT
    return {"x": (n, c), "t": (n, c) if one_hot else (n,), "loss": ()}


def labels(
    shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype[Any], without: Without
) -> st.SearchStrategy[Any]:
    """Integer labels in [0, C), or the same labels one-hot encoded in the run's dtype."""
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
        reference=reference.softmax_with_loss,
        signature="forward(x[N,C], t[N] labels | t[N,C] one-hot) -> mean cross entropy   (backward(dout=1) -> dx)",
        args=(
            Arg(name="x", grad="dx", domain=(-1e4, 1e4), batch=True),
            Arg(name="t", values=labels, batch=True),
        ),
        shapes=softmax_loss_shapes,
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
        epsilon=reference.softmax_with_loss_epsilon,
    ),
)
