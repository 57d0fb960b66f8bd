"""Rows for ``backprop.affine`` (Affine) against ``reference.affine``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import backprop
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict
from backprop.verify.vocabulary import Feature


def _affine(n: int, trailing: tuple[int, ...], m: int) -> ShapeDict:
    d = int(np.prod(trailing))
    return {"x": (n, *trailing), "W": (d, m), "b": (m,), "out": (n, m)}


AFFINE_POOL: tuple[ShapeDict, ...] = (
    _affine(1, (1,), 1),  # the smallest, where shrinking ends when it can
    _affine(1, (2,), 3),  # a batch of one
    _affine(2, (3,), 4),  # nothing square
    _affine(3, (2,), 2),  # W square, N differs
    _affine(2, (1,), 3),  # D = 1
    _affine(4, (3,), 1),  # M = 1
    _affine(3, (3,), 3),  # all square: hides a transpose, as real layers can be
    _affine(2, (2, 3), 2),  # N-D input, flattened
    _affine(3, (2, 1), 4),  # N-D with a size-1 axis
    _affine(2, (2, 1, 3), 2),  # rank 4
    _affine(1, (2, 2, 2), 3),  # rank 4, a batch of one
    _affine(32, (5,), 3),  # a large batch
    _affine(2, (64,), 32),  # large axes
)
"""x (N, *d) with prod(d) = D, W (D, M), b (M,): 1 x 1 x 1, a batch of one, D = 1, M = 1, square and non-square,
N-D input up to rank 4, and a large batch and large axes."""


def _nd(values: Mapping[str, Any]) -> set[Feature]:
    return {Feature.ND} if np.ndim(values["x"]) > 2 else set()


SECTION = (1, 5, 6)  # 5.6: Affine

ROWS = (
    Row(
        name="affine",
        layer=backprop.Affine,
        reference=lazy("reference.affine", "affine"),
        graph=lazy("reference.affine", "affine_graph"),
        signature="Affine(W[D,M], b[M]).forward(x[N,*d], prod(d)=D) -> [N,M]   (backward -> dx; .dW, .db)",
        args=(
            Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
            Arg(name="b", to="init", grad="db", domain=(-1e3, 1e3)),
            Arg(name="x", grad="dx", domain=(-1e3, 1e3), batch=True),
        ),
        shapes=AFFINE_POOL,
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
