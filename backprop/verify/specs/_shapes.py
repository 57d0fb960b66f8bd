"""Shape pools shared by several spec modules."""

from __future__ import annotations

from backprop.verify.row import ShapeDict


def _same(*shapes: tuple[int, ...]) -> tuple[ShapeDict, ...]:
    return tuple({"x": s, "out": s} for s in shapes)


SAME_SHAPE_POOL = _same((), (1,), (4,), (2, 3), (3, 1), (1, 2, 3), (2, 3, 4), (3, 2, 2, 2), (4, 32), (2, 64))
"""An elementwise layer's input: a scalar, size-1 axes, non-square, ranks 0 to 4, and two large ones."""

__all__ = ["SAME_SHAPE_POOL"]
