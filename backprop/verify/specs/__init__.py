"""The rows, one module per module of ``backprop`` and ``reference`` (the names mirror each other)."""

from __future__ import annotations

from backprop.verify.row import Row
from backprop.verify.specs import activations, affine, arithmetic, losses

ROWS: tuple[Row, ...] = (*arithmetic.ROWS, *activations.ROWS, *affine.ROWS, *losses.ROWS)

__all__ = ["ROWS"]
