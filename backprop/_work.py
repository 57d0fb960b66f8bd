"""Work arrays a layer keeps between calls (a workspace, as cuDNN calls it).

A fresh array of a few hundred KB or more pays a page fault per 4 KB page on first touch, and whether it
does depends on what the process freed before: the same layer call took 54 us or 110-140 us depending on
the allocator's state. A kept array is mapped once and stays warm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["WORKSPACE_BYTES", "Work", "kept"]

Array = NDArray[Any]

WORKSPACE_BYTES = 16 * 2**20
"""How much memory one layer may keep for work arrays between calls."""

Work = dict[str, tuple[tuple[Any, ...], Array]]
"""A layer's kept work arrays: name -> (the key they were made for, the array)."""


def kept(
    store: Work, name: str, shape: tuple[int, ...], dtype: Any, zeros: tuple[Any, ...] | None = None
) -> Array:
    """A work array kept in ``store`` between calls while its shape and dtype hold.

    The store is capped (``WORKSPACE_BYTES``): past the cap
    arrays are made per call, so a large network keeps little more than before. An array with ``zeros``
    starts zeroed and its callers write only the region that ``zeros`` (the geometry) determines, so its
    border stays zero; another geometry gets a new array. Outputs and gradients never come from here.
    """
    key = (shape, np.dtype(dtype), zeros)
    if name in store and store[name][0] == key:
        return store[name][1]
    store.pop(name, None)
    buf = np.empty(shape, dtype) if zeros is None else np.zeros(shape, dtype)
    if sum(b.nbytes for _, b in store.values()) + buf.nbytes <= WORKSPACE_BYTES:
        store[name] = (key, buf)
    return buf
