"""Rows for ``backprop.arithmetic`` (MulLayer, AddLayer) against ``reference.arithmetic``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import backprop
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict
from backprop.verify.vocabulary import Feature


def _pair(x: tuple[int, ...], y: tuple[int, ...]) -> ShapeDict:
    return {"x": x, "y": y, "out": np.broadcast_shapes(x, y)}


BROADCAST_POOL: tuple[ShapeDict, ...] = (
    # smallest first: shrinking goes towards the first entry that still fails
    _pair((), ()),
    _pair((3,), (3,)),
    _pair((2, 3), (2, 3)),
    _pair((2, 3), (3,)),  # leading axis dropped from y
    _pair((3,), (2, 3)),  # ... and from x
    _pair((2, 1), (2, 3)),  # a size-1 axis of x stretched
    _pair((2, 3), (1, 3)),  # ... and of y
    _pair((), (2, 2)),  # a scalar against an array
    _pair((3, 1, 2), (4, 1)),  # both stretched, ranks differ
    _pair((2, 3, 2, 2), (2, 3, 2, 2)),  # rank 4
    _pair((2, 1, 3, 1), (4, 1, 2)),  # rank 4, broadcast on several axes
    _pair((3, 32), (3, 32)),  # large
    _pair((2, 64), (64,)),  # large, broadcast
)
"""Same shapes, leading axes dropped, size-1 axes stretched on either side, a scalar, rank 4 and large
sizes: every way an unreduced gradient shows, in 13 shapes (5 without ``broadcast``)."""


def _broadcasts(values: Mapping[str, Any]) -> set[Feature]:
    return {Feature.BROADCAST} if np.shape(values["x"]) != np.shape(values["y"]) else set()


SECTION = (1, 5, 4)  # "Deep Learning from Scratch", 5.4: MulLayer, AddLayer
_FEATURES = (Feature.BROADCAST, Feature.RANK4, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO)
_OPERANDS = (
    Arg(name="x", grad="dx", domain=(-1e4, 1e4)),
    Arg(name="y", grad="dy", domain=(-1e4, 1e4)),
)

ROWS = (
    Row(
        name="mul",
        layer=backprop.MulLayer,
        reference=lazy("reference.arithmetic", "mul"),
        signature="forward(x, y) -> x * y   (broadcasting; backward -> dx, dy)",
        args=_OPERANDS,
        shapes=BROADCAST_POOL,
        features=_FEATURES,
        row_features=_broadcasts,
    ),
    Row(
        name="add",
        layer=backprop.AddLayer,
        reference=lazy("reference.arithmetic", "add"),
        signature="forward(x, y) -> x + y   (broadcasting; backward -> dx, dy)",
        args=_OPERANDS,
        shapes=BROADCAST_POOL,
        features=_FEATURES,
        row_features=_broadcasts,
    ),
)
