"""Rows for ``backprop.activations`` (Relu, Sigmoid) against ``reference.activations``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

import backprop
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row
from backprop.verify.specs._shapes import SAME_SHAPE_POOL
from backprop.verify.vocabulary import Feature


def relu_subgradient(
    values: Mapping[str, Any], cotangents: tuple[Any, ...], grad: str, expected: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """At x == 0 any relu'(0) in [0, 1] is a valid subgradient: dx runs from 0 * dout (the left
    derivative) to 1 * dout (the right one) there."""
    x = np.asarray(values["x"])
    dout = np.broadcast_to(np.asarray(cotangents[0], dtype=np.float64), x.shape)
    at = x == 0
    return np.where(at, 0.0, expected), np.where(at, dout, expected)


SECTION = (1, 5, 5)  # 5.5: Relu, Sigmoid
_FEATURES = (Feature.RANK4, Feature.LARGE, Feature.EXTREME, Feature.NEGATIVE_ZERO)

ROWS = (
    Row(
        name="relu",
        layer=backprop.Relu,
        reference=lazy("reference.activations", "relu"),
        graph=lazy("reference.activations", "relu_graph"),
        signature="forward(x) -> max(x, 0)   (backward -> dx)",
        args=(Arg(name="x", grad="dx", domain=(-1e4, 1e4), kinks=(0.0,)),),
        shapes=SAME_SHAPE_POOL,
        features=_FEATURES,
        conventions=(
            "relu'(0) = 0, as jax.nn.relu differentiates; any value in [0, 1] is a valid subgradient",
        ),
        subgradient=relu_subgradient,
        kink_note="relu'(0) = {t:g}",
    ),
    Row(
        name="sigmoid",
        layer=backprop.Sigmoid,
        reference=lazy("reference.activations", "sigmoid"),
        signature="forward(x) -> 1 / (1 + exp(-x))   (backward -> dx)",
        args=(Arg(name="x", grad="dx", domain=(-1e4, 1e4)),),
        shapes=SAME_SHAPE_POOL,
        features=_FEATURES,
    ),
)
