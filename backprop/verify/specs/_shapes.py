"""Shape strategies shared by several spec modules."""

from __future__ import annotations

from hypothesis import strategies as st

from backprop.verify.draw import Without, axis_size, max_rank

ShapeDict = dict[str, tuple[int, ...]]


@st.composite
def array_shape(draw: st.DrawFn, without: Without, min_dims: int = 0, usual_rank: int = 3) -> tuple[int, ...]:
    """A shape of rank ``min_dims`` to 3 (4 now and then) with small sides, and a large last axis now and
    then; rank 4 is drawn about once in eight shapes."""
    top = max_rank(without, usual_rank)
    rank = (
        draw(st.integers(min_dims, usual_rank))
        if top == usual_rank
        else draw(
            st.integers(0, 7).flatmap(lambda k: st.just(top) if k == 7 else st.integers(min_dims, usual_rank))
        )
    )
    sides = [draw(st.integers(1, 4)) for _ in range(rank)]
    if sides:
        sides[-1] = draw(axis_size(without))
    return tuple(sides)


def same_shape(without: Without) -> st.SearchStrategy[ShapeDict]:
    return array_shape(without).map(lambda s: {"x": s, "out": s})


__all__ = ["ShapeDict", "array_shape", "same_shape"]
