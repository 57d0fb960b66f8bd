"""Rows for ``backprop.affine`` (Affine) against ``reference.affine``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

import backprop
import reference
from backprop.verify.draw import Without, axis_size, batch_size, max_rank
from backprop.verify.row import Arg, Row
from backprop.verify.specs._shapes import ShapeDict
from backprop.verify.vocabulary import Feature


@st.composite
def affine_shapes(draw: st.DrawFn, without: Without) -> ShapeDict:
    """x (N, *d) with prod(d) = D, W (D, M), b (M,); d has one axis, or up to three with ``nd``."""
    n, m = draw(batch_size(without)), draw(axis_size(without))
    trailing_rank = 1 if Feature.ND in without else draw(st.integers(1, max_rank(without) - 1))
    trailing = [draw(st.integers(1, 3)) for _ in range(trailing_rank)]
    if trailing_rank == 1:
        trailing = [draw(axis_size(without))]
    d = int(np.prod(trailing))
    return {"x": (n, *trailing), "W": (d, m), "b": (m,), "out": (n, m)}


def _nd(values: Mapping[str, Any]) -> set[Feature]:
    return {Feature.ND} if np.ndim(values["x"]) > 2 else set()


SECTION = (1, 5, 6)  # 5.6: Affine

ROWS = (
    Row(
        name="affine",
        layer=backprop.Affine,
        reference=reference.affine,
        signature="Affine(W[D,M], b[M]).forward(x[N,*d], prod(d)=D) -> [N,M]   (backward -> dx; .dW, .db)",
        args=(
            Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
            Arg(name="b", to="init", grad="db", domain=(-1e3, 1e3)),
            Arg(name="x", grad="dx", domain=(-1e3, 1e3), batch=True),
        ),
        shapes=affine_shapes,
        features=(
            Feature.ND,
            Feature.BATCH,
            Feature.RANK4,
            Feature.LARGE,
            Feature.EXTREME,
            Feature.NEGATIVE_ZERO,
        ),
        row_features=_nd,
    ),
)
