"""Catalogues of layers that test the tester.

``broken.BROKEN`` holds deliberately wrong layers, each with the gradient the oracle must name and the
kinds of mismatch it may report; ``correct.CORRECT`` holds right layers written in unusual ways, which the
oracle must pass. Every layer follows the book's API exactly (constructor, ``forward``, ``backward`` and
attribute names), so the registry row named by ``against`` can build and call it unchanged.

This module also holds the few plain NumPy helpers the broken layers share, so that each broken class
differs from a correct one only in its single deliberate mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backprop.verify.vocabulary import CODES, Kind

Array = NDArray[Any]

KINDS = frozenset(k.value for k in Kind)


@dataclass(frozen=True, kw_only=True)
class Case:
    """A broken layer: the oracle must fail it and name ``check`` with a mismatch kind in ``kinds``."""

    layer: type
    against: str
    check: str
    kinds: frozenset[str]
    diagnosis: str
    why: str
    dtype: str = "float64"
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``verify`` keywords the case needs (``strict=True`` for a kink convention)."""
    or_checks: frozenset[str] = frozenset()
    """Other checks the same mistake may show in, whichever the shrunk example exercises (a lost state shows
    in the outputs when Wh != 0, and only in dWh when Wh = 0)."""

    @property
    def checks(self) -> frozenset[str]:
        return frozenset({self.check}) | self.or_checks

    def __post_init__(self) -> None:
        if self.diagnosis not in CODES:
            raise ValueError(f"{self.name}: diagnosis must be one of {CODES}, got {self.diagnosis!r}")
        unknown = set(self.kinds) - KINDS
        if not self.kinds or unknown:
            raise ValueError(
                f"{self.name}: kinds must be a non-empty subset of {sorted(KINDS)}, got {self.kinds}"
            )

    @property
    def name(self) -> str:
        return self.layer.__name__


@dataclass(frozen=True, kw_only=True)
class Correct:
    """A correct layer written in an unusual way: the oracle must pass it (no false alarm)."""

    layer: type
    against: str
    why: str
    float32: bool = True
    """Also right in float32 (within the float32 tolerance); False documents why not in ``why``."""
    float64: bool = True
    """Also right in float64; False for code in the second book's style, whose ``dtype='f'`` buffers give
    float32 results whatever the input (right with ``--dtype float32`` only)."""

    @property
    def name(self) -> str:
        module = self.layer.__module__
        # the library's own layers are named after their package so they stand out in test ids
        return (
            self.layer.__name__
            if module.startswith("tests.")
            else f"{module.split('.')[0]}.{self.layer.__name__}"
        )


# ---- shared plain-NumPy helpers for the broken layers --------------------------------------------------


def sum_to(grad: Any, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` down to ``shape``, undoing broadcasting; always returns a new array."""
    g = np.array(grad, copy=True)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.asarray(g)


def stable_sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1 / (1 + e), e / (1 + e)))


def log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)))


def one_hot(t: Array, x: Array) -> Array:
    """Integer labels (N,) as one-hot (N, C) in x's dtype; a one-hot t is returned as is."""
    t = np.asarray(t)
    if t.shape == x.shape:
        return t.astype(x.dtype)
    return np.eye(x.shape[-1], dtype=x.dtype)[t]
