"""Tolerances keyed by dtype, and the one comparison every check uses.

A gradient is a sum of products, so its rounding error scales with the magnitude of the summed terms,
not with the result: an element that cancels to exactly zero in one summation order carries a residue
of ``eps * sum|terms|`` in another. The oracle measures that magnitude as the reference evaluated on
absolute values, ``terms = |vjp|(|x|, |W|, ...; |dout|)`` (exact for products, sums and matrix products,
a sound order of magnitude for the activations), and each element must satisfy

    |actual - expected| <= atol + rtol * max(max|expected|, terms)

The relative error reported is the worst ``|actual - expected| / max(max|expected|, terms, atol/rtol)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


# float64: both sides are float64, so differences are summation-order rounding (~1e-15 relative);
# 1e-9 leaves room for sums of a few dozen terms and still flags any real derivation bug (O(1)).
TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-9, atol=1e-12),
    "float32": Tolerance(rtol=2e-5, atol=1e-6),
}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    index: tuple[int, ...]
    expected: float
    actual: float


def compare(
    expected: NDArray[np.float64],
    actual: NDArray[np.float64],
    tol: Tolerance,
    terms: NDArray[np.float64] | None = None,
) -> Comparison:
    """Compare same-shape arrays as above; NaN or inf where ``expected`` is finite fails."""
    err = np.abs(actual - expected)
    finite = np.isfinite(actual) | ~np.isfinite(expected)
    same_inf = np.isinf(expected) & (actual == expected)
    err = np.where(same_inf, 0.0, np.where(finite, err, np.inf))
    err = np.where(np.isnan(err), np.inf, err)
    if err.size == 0:
        return Comparison(True, 0.0, 0.0, (), 0.0, 0.0)
    scale = np.full(err.shape, np.max(np.abs(expected), initial=0.0, where=np.isfinite(expected)))
    if terms is not None:
        scale = np.maximum(scale, np.where(np.isfinite(terms), np.abs(terms), 0.0))
    flat = int(np.argmax(err))
    index = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        # below atol/rtol the absolute floor decides; XLA also flushes subnormals to zero there
        rel = np.where(err == 0, 0.0, err / np.maximum(scale, tol.atol / tol.rtol))
    ok = bool(np.all(err <= tol.atol + tol.rtol * scale))
    return Comparison(
        ok,
        float(err.flat[flat]),
        float(np.max(rel)),
        index,
        float(expected.flat[flat]),
        float(actual.flat[flat]),
    )
