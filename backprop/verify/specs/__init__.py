"""The rows, one module per module of ``backprop`` and ``reference`` (the names mirror each other).

Every module here, or in a subpackage (``nlp``: the second book), with a ``ROWS`` tuple is collected, in
the order of the books: each declares ``SECTION = (book, chapter, section)``. Adding a layer's row means
adding it to its module (or a new module); nothing here changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from backprop.verify.row import Row


def _collect() -> tuple[Row, ...]:
    modules = [
        importlib.import_module(m.name) for m in pkgutil.walk_packages(__path__, prefix=f"{__name__}.")
    ]
    with_rows = [m for m in modules if hasattr(m, "ROWS")]
    with_rows.sort(key=lambda m: (m.SECTION, m.__name__))
    return tuple(row for m in with_rows for row in m.ROWS)


ROWS: tuple[Row, ...] = _collect()

__all__ = ["ROWS"]
