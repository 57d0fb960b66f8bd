"""A scoped switch to float64 in JAX, so importing ``reference`` never changes a caller's JAX."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import jax


@contextmanager
def x64() -> Iterator[None]:
    """Enable ``jax_enable_x64`` inside the block only, restoring the caller's setting afterwards."""
    with jax.enable_x64(True):
        yield
