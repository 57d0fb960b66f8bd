"""Rows for ``backprop.arithmetic`` (MulLayer, AddLayer) against ``reference.arithmetic``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backprop
import reference
from backprop.verify.draw import LARGE_AXES, Without, max_rank, rare
from backprop.verify.row import Arg, Row
from backprop.verify.specs._shapes import ShapeDict, array_shape
from backprop.verify.vocabulary import Feature


@st.composite
def _stretched_pair(draw: st.DrawFn, without: Without) -> ShapeDict:
    """Operands that broadcasting must stretch: leading axes dropped, or size-1 axes against sides >= 2."""
    out = tuple(max(2, n) for n in draw(array_shape(without, min_dims=1)))

    def operand() -> tuple[int, ...]:
        kept = out[draw(st.integers(0, len(out))) :]
        return tuple(1 if draw(st.booleans()) else n for n in kept)

    x, y = operand(), operand()
    if 1 not in x + y:
        # at least one size-1 axis stretched against a longer one: the case an unsummed gradient fails on
        pick_x = draw(st.booleans()) if x and y else bool(x)
        grown = list(x if pick_x else y)
        if grown:
            grown[draw(st.integers(0, len(grown) - 1))] = 1
            x, y = (tuple(grown), y) if pick_x else (x, tuple(grown))
    return {"x": x, "y": y, "out": np.broadcast_shapes(x, y)}


def broadcast_pair(without: Without) -> st.SearchStrategy[ShapeDict]:
    """Two operand shapes and their broadcast; the same shape twice without ``broadcast``."""
    if Feature.BROADCAST in without:
        return array_shape(without).map(lambda s: {"x": s, "y": s, "out": s})
    # Half the draws stretch an operand on purpose: generic broadcastable pairs rarely do, and an
    # unreduced gradient only shows when one is stretched.
    generic = hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_rank(without), max_side=4
    ).map(lambda s: {"x": s.input_shapes[0], "y": s.input_shapes[1], "out": s.result_shape})
    pairs = st.one_of(generic, _stretched_pair(without))
    if Feature.LARGE in without:
        return pairs
    # a large operand about once in ten pairs: the branches above reach one too rarely on their own
    large = st.tuples(st.integers(1, 3), st.sampled_from(LARGE_AXES), st.booleans()).map(_large_pair)
    return rare(pairs, large, 10)


def _large_pair(drawn: tuple[int, int, bool]) -> ShapeDict:
    """x (n, big) against y (big,) or (n, big): a long last axis, broadcast or not."""
    n, big, stretched = drawn
    y = (big,) if stretched else (n, big)
    return {"x": (n, big), "y": y, "out": (n, big)}


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
        reference=reference.mul,
        signature="forward(x, y) -> x * y   (broadcasting; backward -> dx, dy)",
        args=_OPERANDS,
        shapes=broadcast_pair,
        features=_FEATURES,
        row_features=_broadcasts,
    ),
    Row(
        name="add",
        layer=backprop.AddLayer,
        reference=reference.add,
        signature="forward(x, y) -> x + y   (broadcasting; backward -> dx, dy)",
        args=_OPERANDS,
        shapes=broadcast_pair,
        features=_FEATURES,
        row_features=_broadcasts,
    ),
)
