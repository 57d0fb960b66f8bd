"""The registry: every row of ``backprop.verify.specs``, by name."""

from __future__ import annotations

from backprop.verify.row import Arg, Read, Row
from backprop.verify.specs import ROWS

_BY_NAME = {row.name: row for row in ROWS}


def get_row(name: str | Row) -> Row:
    """The row registered under ``name`` (a ``Row`` is returned as it is); ValueError otherwise."""
    if isinstance(name, Row):
        return name
    if not isinstance(name, str):
        raise ValueError(f"expected a registered layer name or a Row, got {type(name).__name__}: {name!r}")
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown layer {name!r}; known: {', '.join(_BY_NAME)}") from None


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


__all__ = ["ROWS", "Arg", "Read", "Row", "get_row", "names"]
